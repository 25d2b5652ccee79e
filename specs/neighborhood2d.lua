-- neighborhood2d.lua: 2-D neighborhood attention (NATTEN). Tokens are the
-- pixels of a height x width image in row-major order; each pixel sees the
-- kernel x kernel window around it, moved inward at the borders, per axis:
-- abs(k_i - clamp(q_i, r, n_i - 1 - r)) <= r with r = kernel // 2, within
-- the group of pixels with the same position mod dilation.
-- Used by: NAT / DiNAT (Faster Neighborhood Attention), CLEAR (local windows
-- in diffusion transformers).
-- Params: height, width (default 8 x 8; 14 to 128 in practice), kernel (odd,
-- default 3; 7 to 13 in practice), dilation (default 1).
local a = require "attnc"

local height = a.param("height", 8, { min = 1, doc = "grid rows" })
local width = a.param("width", 8, { min = 1, doc = "grid columns" })
local kernel = a.param("kernel", 3, { min = 1, doc = "neighborhood side in pixels (odd)" })
local dilation = a.param("dilation", 1, { min = 1, doc = "step between neighbors" })

return a.pattern {
  grid = { height, width },
  mask = a.neighborhood { kernel = kernel, dilation = dilation },
}
