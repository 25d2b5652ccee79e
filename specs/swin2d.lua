-- swin2d.lua: Swin window attention on a 2-D grid, optionally shifted. The
-- height x width image (row-major) is cut into window x window windows after
-- a cyclic shift by `shift` on both axes; a pixel sees the pixels of its own
-- window: ((q_i - shift) mod n_i) // window == ((k_i - shift) mod n_i) // window.
-- Used by: Swin Transformer (window 7, shift 3 on every other block),
-- TextMonkey, StyleSwin.
-- Params: height, width (default 8 x 8), window (default 4), shift (default 2;
-- 0 for the unshifted blocks).
local a = require "attnc"

local height = a.param("height", 8, { min = 1 })
local width = a.param("width", 8, { min = 1 })
local window = a.param("window", 4, { min = 1 })
local shift = a.param("shift", 2, { min = 0 })

return a.pattern {
  grid = { height, width },
  mask = a.swin { window = window, shift = shift },
}
