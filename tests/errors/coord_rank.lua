-- error: tests/errors/coord_rank.lua:5: q.z needs a grid of more axes (this grid has 2: use .y and .x)
local a = require "attnc"
return a.pattern {
  grid = { 8, 8 },
  mask = function(b, h, q, k) return q.z:eq(k.z) end,
}
