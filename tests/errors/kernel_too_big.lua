-- error: tests/errors/kernel_too_big.lua:5: neighborhood: axis 1 has 8 tokens, fewer than kernel * dilation = 9
local a = require "attnc"
return a.pattern {
  grid = { 16, 8 },
  mask = a.neighborhood { kernel = 3, dilation = 3 },
}
