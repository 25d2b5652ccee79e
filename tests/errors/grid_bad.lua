-- error: tests/errors/grid_bad.lua:4: grid: entry 2 must be an integer from 1 to 2147483648 (got 0)
local a = require "attnc"
local H, W = a.param("height", 8), a.param("width", 0)
return a.pattern {
  grid = { H, W },
  mask = a.neighborhood { kernel = 3 },
}
