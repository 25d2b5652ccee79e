-- logit_scaling.lua: causal attention with log-n logit scaling for context
-- extension: a query at position q scales its scores by
-- max(1, log(q + 1) / log(train)), so attention stays as sharp past the
-- training length as within it.
-- Used by: context-window extension (log-n scaling, as in Qwen's long
-- context), SeNER.
-- Params: train (the training length in tokens, default 64).
local a = require "attnc"

local train = a.param("train", 64, { min = 2, doc = "tokens below which scores are not scaled" })

return a.pattern {
  mask = a.causal(),
  score = a.logit_scale(function(q)
    return a.max(1.0, a.log(a.float(q + 1)) / math.log(train))
  end),
}
