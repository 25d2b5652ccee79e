-- error: tests/errors/mask_number.lua:4: mask must return a boolean such as q:ge(k), got a symbolic int
local a = require "attnc"
return a.pattern {
  mask = function(b, h, q, k) return q - k end,
}
