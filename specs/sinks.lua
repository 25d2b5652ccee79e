-- sinks.lua: attention sinks with a sliding window (StreamingLLM). Causal;
-- a token sees the last `window` tokens and the first `sinks` tokens:
-- k <= q and (q - k < window or k < sinks).
-- Used by: StreamingLLM (4 sinks), RazorAttention's non-retrieval heads.
-- Params: window (default 16; 1024 to 4096 in practice), sinks (default 4).
local a = require "attnc"

local window = a.param("window", 16, { min = 1, doc = "tokens each query sees behind it" })
local sinks = a.param("sinks", 4, { min = 0, doc = "leading tokens every query sees" })

return a.pattern {
  mask = a.sliding_window(window) | (a.causal() & a.sinks(sinks)),
}
