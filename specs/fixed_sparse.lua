-- fixed_sparse.lua: the "fixed" pattern of Sparse Transformers (Child et
-- al. 2019). Causal; a token sees the tokens of its own block and the last
-- `summary` tokens of every block before it, which summarise their blocks:
-- k <= q and (q // block == k // block or k % block >= block - summary).
-- Used by: Sparse Transformer (block 128, summary 8 to 32), GPT-3's
-- alternating sparse layers.
-- Params: block (default 128), summary (default 16, at most block).
local a = require "attnc"

local block = a.param("block", 128, { min = 1, doc = "tokens per block" })
local summary = a.param("summary", 16, { min = 1, doc = "the last tokens of a block every later token sees" })
if summary > block then error("summary must be at most block (got " .. summary .. " > " .. block .. ")") end

return a.pattern {
  mask = function(b, h, q, k)
    local same = (q // block):eq(k // block)
    local summ = (k % block):ge(block - summary)
    return a.causal()(b, h, q, k) & (same | summ)
  end,
}
