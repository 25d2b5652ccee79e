-- error: tests/errors/syntax.lua:4: 'end' expected near ')'
local a = require "attnc"
return a.pattern {
  mask = function(b, h, q, k) return q:ge(k)) end,
}
