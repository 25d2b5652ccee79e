-- error: tests/errors/bitwise_int.lua:4: '&' combines booleans (conditions and masks), got a symbolic int
local a = require "attnc"
return a.pattern {
  mask = function(b, h, q, k) return (q & 1):eq(0) end,
}
