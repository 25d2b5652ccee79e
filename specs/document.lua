-- document.lua: document masking for packed sequences (varlen). The input
-- doc gives each token's segment id (non-decreasing); a token sees the
-- tokens of its own document, causally: doc[q] == doc[k] and k <= q
-- (with -D causal=0, the whole document).
-- Used by: packed LLM training; ScatterFormer and FlatFormer (groups of
-- varying size) with causal=0.
-- Params: causal (1 or 0). Inputs: doc (i32 [S]).
local a = require "attnc"

local causal = a.param("causal", 1, { min = 0, max = 1,
  doc = "1: causal within a document, 0: the whole document" })
local doc = a.input("doc", "i32", { "S" })

return a.pattern {
  mask = a.documents(doc, { causal = causal == 1 }),
}
