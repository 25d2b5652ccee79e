-- row_gain.lua: a factor per query row on s, negative on the first rows,
-- with a term on the first keys: the CUDA backend folds positive row
-- factors into the softmax where a tile has no key term (row_gain,
-- kScoreRaw, docs/cuda.md), and a warp with a row factor of 0 or below keeps
-- the per-element FMA. Causal. Run by tests/gpu/run.sh cli.
local a = require "attnc"

local flip = a.param("flip", 150, { min = 0, doc = "rows below it have a negative factor" })

return a.pattern {
  mask = a.causal(),
  score = a.score(function(s, b, h, q, k)
    local g = a.select(q:lt(flip), -0.5, 1.0 + q / 1000.0)
    return s * g - a.select(k:lt(3), 0.4, 0.0)
  end),
}
