-- swin2d.lua: Swin window attention on a 2-D grid, optionally shifted. The
-- height x width image (row-major) is cut into window x window windows after
-- a cyclic shift by `shift` on both axes; a pixel sees the pixels of its own
-- window: ((q_i - shift) mod n_i) // window == ((k_i - shift) mod n_i) // window,
-- and, as Swin's attention mask has it, pixels rolled round from the start of
-- an axis (x_i < shift) and the others do not see each other (seam = 1).
-- Used by: Swin Transformer (window 7, shift 3 on every other block),
-- TextMonkey, StyleSwin.
-- Params: height, width (default 8 x 8), window (default 4), shift (default 2;
-- 0 for the unshifted blocks), seam (default 1; 0: windows wrap round).
local a = require "attnc"

local height = a.param("height", 8, { min = 1, doc = "image rows" })
local width = a.param("width", 8, { min = 1, doc = "image columns" })
local window = a.param("window", 4, { min = 1, doc = "window side in pixels" })
local shift = a.param("shift", 2, { min = 0, doc = "cyclic shift on both axes (0: none)" })
local seam = a.param("seam", 1, { min = 0, max = 1,
  doc = "1: rolled-round pixels kept apart (Swin's mask), 0: wrap" })

return a.pattern {
  grid = { height, width },
  mask = a.swin { window = window, shift = shift, seam = seam == 1 },
}
