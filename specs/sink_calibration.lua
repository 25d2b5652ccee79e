-- sink_calibration.lua: attention sinks with a sliding window whose sink
-- scores are calibrated down per head: s - delta[h] where k < sinks, so the
-- sinks take less of the attention they draw without being useful.
-- Used by: attention calibration (ACT) on StreamingLLM-style caches.
-- Params: window (default 16), sinks (default 4). Inputs: delta (f32 [H]).
local a = require "attnc"

local window = a.param("window", 16, { min = 1, doc = "tokens each query sees behind it" })
local sinks = a.param("sinks", 4, { min = 0, doc = "leading tokens every query sees" })
local delta = a.input("delta", "f32", { "H" })

return a.pattern {
  mask = a.sliding_window(window) | (a.causal() & a.sinks(sinks)),
  score = a.sink_calibration(sinks, delta),
}
