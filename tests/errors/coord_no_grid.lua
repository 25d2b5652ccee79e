-- error: tests/errors/coord_no_grid.lua:4: q.x needs a grid: set grid = {...} in attnc.pattern
local a = require "attnc"
return a.pattern {
  mask = function(b, h, q, k) return a.abs(q.x - k.x):le(3) end,
}
