-- score_terms.lua: a score modification with every kind of term the CUDA
-- backend's score split takes apart (docs/cuda.md): s plus a distance term
-- c * (k - q) whose c depends on the head (ALiBi's form), a second one
-- written the other way round, a term of the key alone, one of the query
-- alone and a constant. Causal. Run by tests/gpu/run.sh cli.
local a = require "attnc"

return a.pattern {
  mask = a.causal(),
  score = a.score(function(s, b, h, q, k)
    return s + 0.05 * (h + 1) * (k - q) - 0.01 * (q - k) + 0.002 * k - 0.003 * q + 0.5
  end),
}
