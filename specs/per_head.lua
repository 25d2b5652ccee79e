-- per_head.lua: a different pattern per head. Causal; the first
-- `full_heads` query heads (retrieval heads) see the whole prefix, the others
-- only a sliding window plus sinks.
-- Used by: RazorAttention (retrieval heads full, the rest window + sinks);
-- StyleSwin double attention has the same shape (half the heads shifted).
-- Params: full_heads (default 2), window (default 16), sinks (default 4).
local a = require "attnc"

local full_heads = a.param("full_heads", 2, { min = 0,
  doc = "leading query heads that see the whole prefix" })
local window = a.param("window", 16, { min = 1, doc = "window of the other heads" })
local sinks = a.param("sinks", 4, { min = 0, doc = "leading tokens the other heads always see" })

return a.pattern {
  mask = a.causal() & a.per_head(full_heads, true, a.sliding_window(window) | a.sinks(sinks)),
}
