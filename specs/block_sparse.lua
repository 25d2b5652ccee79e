-- block_sparse.lua: block-sparse attention from a block bitmap. The input
-- blocks holds, per batch and head, one 0/1 entry per (query block, key
-- block) of block x block tokens: blocks[b, h, q // block, k // block] ~= 0.
-- Used by: SeerAttention gates, BigBird-style fixed patterns, any
-- precomputed block sparsity (block 64 or 128 in practice).
-- Params: block (default 16). Inputs: blocks (i32 [B, H, S/block, S/block]).
local a = require "attnc"

local block = a.param("block", 16, { min = 1, doc = "tokens per block of the blocks bitmap" })
local blocks = a.input("blocks", "i32", { "B", "H", "S/block", "S/block" })

return a.pattern {
  mask = a.block_bitmap(blocks, block),
}
