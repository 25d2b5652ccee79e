-- routed.lua: routed (top-k region) attention. Tokens are cut into regions
-- of `region` tokens; the input route lists, per batch, head and query
-- region, the topk key regions it attends to:
-- k // region in route[b, h, q // region, 0 .. topk-1].
-- Used by: BiFormer bi-level routing; LongHeads, HiP, Landmark attention and
-- SeerAttention choose key blocks per query block the same way.
-- Params: region (default 16), topk (default 2). Inputs: route (i32
-- [B, H, S/region, topk], region indices).
local a = require "attnc"

local region = a.param("region", 16, { min = 1, doc = "tokens per region" })
local topk = a.param("topk", 2, { min = 1, doc = "key regions each query region attends to" })
local route = a.input("route", "i32", { "B", "H", "S/region", "topk" })

return a.pattern {
  mask = a.routed { route = route, region = region, own = false },
}
