-- sliding_window.lua: sliding-window attention. Causal (the default): each
-- token sees the last `window` tokens including itself, 0 <= q - k < window;
-- with -D causal=0, two-sided: abs(q - k) <= window.
-- Used by: Mistral (window 4096), Vi-Mistral-X, Titans (short-term memory),
-- BASED (window 64).
-- Params: window (default 16; 64 to 4096 in practice), causal (1 or 0).
local a = require "attnc"

local window = a.param("window", 16, { min = 1, doc = "tokens each query sees" })
local causal = a.param("causal", 1, { min = 0, max = 1, doc = "1: causal, 0: two-sided" })

return a.pattern {
  mask = causal == 1 and a.sliding_window(window) or a.window(window),
}
