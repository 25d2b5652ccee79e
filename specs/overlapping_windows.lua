-- overlapping_windows.lua: overlapping cross-attention windows (HAT). Query
-- windows of window x window pixels; each sees the key window of
-- window + floor(window * overlap) pixels per axis centred on it.
-- Used by: HAT (Hybrid Attention Transformer) overlapping cross-attention
-- blocks (window 16, overlap 0.5).
-- Params: height, width (default 8 x 8), window (default 4), overlap (default
-- 0.5, a fraction of the window).
local a = require "attnc"

local height = a.param("height", 8, { min = 1, doc = "image rows" })
local width = a.param("width", 8, { min = 1, doc = "image columns" })
local window = a.param("window", 4, { min = 1, doc = "query window side in pixels" })
local overlap = a.param("overlap", 0.5, { min = 0.0,
  doc = "key window growth, a fraction of window" })

return a.pattern {
  grid = { height, width },
  mask = a.overlapping { window = window, overlap = overlap },
}
