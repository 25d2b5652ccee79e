-- error: tests/errors/kernel_even.lua:6: neighborhood kernel must be odd (got 4)
local a = require "attnc"
local K = a.param("kernel", 4)
return a.pattern {
  grid = { 8, 8 },
  mask = a.neighborhood { kernel = K },
}
