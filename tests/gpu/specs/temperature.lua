-- temperature.lua: a per-head temperature on s, written as a division
-- (s / (1 + h / 4)), plus an ALiBi-style distance term: the CUDA backend's
-- score split takes the temperature into the FMA's factor (score_gain,
-- docs/cuda.md). Causal. Run by tests/gpu/run.sh cli.
local a = require "attnc"

return a.pattern {
  mask = a.causal(),
  score = a.score(function(s, b, h, q, k)
    return s / (1.0 + h / 4.0) - 0.02 * (h + 1) * (q - k)
  end),
}
