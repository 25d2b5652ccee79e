-- clustered.lua: clustered attention. The input cluster gives each token's
-- cluster per batch and head (tokens sorted by cluster); a token sees the
-- tokens of its own cluster: cluster[b, h, q] == cluster[b, h, k].
-- Used by: Routing Transformer (k-means clusters), HyperAttention (LSH
-- buckets), Reformer-style bucketing.
-- Params: none. Inputs: cluster (i32 [B, H, S]).
local a = require "attnc"

local cluster = a.input("cluster", "i32", { "B", "H", "S" })

return a.pattern {
  mask = a.clusters(cluster),
}
