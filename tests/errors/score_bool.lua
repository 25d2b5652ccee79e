-- error: tests/errors/score_bool.lua:4: score must return a number, got a symbolic bool
local a = require "attnc"
return a.pattern {
  score = function(s, b, h, q, k) return s:gt(0) end,
}
