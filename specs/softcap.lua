-- softcap.lua: causal attention with logit soft-capping: scores pass
-- through cap * tanh(s / cap), which bounds them to (-cap, cap).
-- Used by: Gemma 2 (cap 50), Grok-1 (cap 30).
-- Params: cap (default 50.0).
local a = require "attnc"

local cap = a.param("cap", 50.0, { min = 0.001, doc = "scores become cap * tanh(s / cap)" })

return a.pattern {
  mask = a.causal(),
  score = a.softcap(cap),
}
