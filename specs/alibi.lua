-- alibi.lua: causal attention with ALiBi. A head-specific linear penalty on
-- distance is added to each score: s + slope[h] * (k - q), with
-- slope[h] = 2^(-8 (h + 1) / heads).
-- Used by: ALiBi models (BLOOM, MPT).
-- Params: heads (the number of query heads, default 8).
local a = require "attnc"

local heads = a.param("heads", 8, { min = 1,
  doc = "query heads: slope[h] = 2^(-8 (h + 1) / heads)" })

return a.pattern {
  mask = a.causal(),
  score = a.alibi(heads),
}
