-- error: tests/errors/score_params_no_s.lua:4: parameter 1 of this score function is named 'b', but it receives the score: score functions are called with (s, b, h, q, k), as FlexAttention's score_mod; write function(s, b, h, q, k)
local a = require "attnc"
return a.pattern {
  score = a.score(function(b, h, q, k) return (q - k) * 0.5 end),
}
