-- axial2d.lua: axial attention on a 2-D grid. The height x width image
-- (row-major) is attended along its axes: a pixel sees the pixels of its own
-- row (axes = 1), of its own column (axes = 2), or of both (axes = 3, the
-- criss-cross of CCNet): q.y == k.y, q.x == k.x, or either.
-- Used by: Axial Transformer and Axial-DeepLab (a row layer, then a column
-- layer), CCNet (criss-cross attention).
-- Params: height, width (default 8 x 8), axes (1 row, 2 column, 3 both;
-- default 3).
local a = require "attnc"

local height = a.param("height", 8, { min = 1, doc = "image rows" })
local width = a.param("width", 8, { min = 1, doc = "image columns" })
local axes = a.param("axes", 3, { min = 1, max = 3, doc = "1: the row, 2: the column, 3: both" })

local function mask(b, h, q, k)
  local row, col = a.eq(q.y, k.y), a.eq(q.x, k.x)
  if axes == 1 then return row end
  if axes == 2 then return col end
  return row | col
end

return a.pattern {
  grid = { height, width },
  mask = mask,
}
