-- error: tests/errors/div_zero.lua:4: division by zero
local a = require "attnc"
return a.pattern {
  mask = function(b, h, q, k) return (q // 0):eq(k) end,
}
