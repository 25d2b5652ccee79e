-- neighborhood3d.lua: 3-D neighborhood attention (NATTEN) over a volume or
-- a video of depth x height x width tokens in row-major order; each token
-- sees the kernel^3 box around it, moved inward at the borders.
-- Used by: NATTEN 3-D (video and volumetric models).
-- Params: depth, height, width (default 4 x 4 x 4), kernel (odd, default 3),
-- dilation (default 1).
local a = require "attnc"

local depth = a.param("depth", 4, { min = 1, doc = "grid depth (frames)" })
local height = a.param("height", 4, { min = 1, doc = "grid rows" })
local width = a.param("width", 4, { min = 1, doc = "grid columns" })
local kernel = a.param("kernel", 3, { min = 1, doc = "neighborhood side (odd)" })
local dilation = a.param("dilation", 1, { min = 1, doc = "step between neighbors" })

return a.pattern {
  grid = { depth, height, width },
  mask = a.neighborhood { kernel = kernel, dilation = dilation },
}
