-- key_bias.lua: a bias on ranges of keys, so that some kv tiles carry a
-- score term and the rest none: the CUDA backend leaves the latter's
-- scores as <q, k> and lets the softmax scale them (kScoreRaw, docs/cuda.md).
-- Keys lo..hi-1 gain `bias`, keys below 3 lose 0.4; causal.
-- Run by tests/gpu/run.sh cli.
local a = require "attnc"

local lo = a.param("lo", 100, { min = 0, doc = "first key of the biased range" })
local hi = a.param("hi", 200, { min = 0, doc = "one past its last" })
local bias = a.param("bias", 0.7, { doc = "what its keys gain" })

return a.pattern {
  mask = a.causal(),
  score = a.score(function(s, b, h, q, k)
    local inside = a.negate(a.any(k:lt(lo), k:ge(hi)))
    return s + a.select(inside, bias, 0.0) - a.select(k:lt(3), 0.4, 0.0)
  end),
}
