-- prefix_lm.lua: prefix language model. The first `prefix` tokens (the
-- prompt) attend to each other bidirectionally, the rest causally:
-- k < prefix or k <= q.
-- Used by: prefix LMs (T5-style prefix LM, UniLM, PaLI).
-- Params: prefix (default 16).
local a = require "attnc"

local prefix = a.param("prefix", 16, { min = 0, doc = "leading tokens attended bidirectionally" })

return a.pattern {
  mask = a.prefix(prefix) | a.causal(),
}
