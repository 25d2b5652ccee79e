-- swin3d.lua: Swin window attention on a 3-D grid (volumes), with a cyclic
-- shift: a token sees the tokens of its own window x window x window box.
-- Used by: Swin UNETR (3-D medical segmentation, window 7), Video Swin.
-- Params: depth, height, width (default 4 x 4 x 4), window (default 2), shift
-- (default 1), seam (default 1: Swin's mask keeps tokens rolled round from the
-- start of an axis apart from the others; 0: windows wrap round).
local a = require "attnc"

local depth = a.param("depth", 4, { min = 1, doc = "grid depth (frames)" })
local height = a.param("height", 4, { min = 1, doc = "grid rows" })
local width = a.param("width", 4, { min = 1, doc = "grid columns" })
local window = a.param("window", 2, { min = 1, doc = "window side" })
local shift = a.param("shift", 1, { min = 0, doc = "cyclic shift on every axis (0: none)" })
local seam = a.param("seam", 1, { min = 0, max = 1,
  doc = "1: rolled-round tokens kept apart (Swin's mask), 0: wrap" })

return a.pattern {
  grid = { depth, height, width },
  mask = a.swin { window = window, shift = shift, seam = seam == 1 },
}
