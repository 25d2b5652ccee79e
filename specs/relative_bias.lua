-- relative_bias.lua: Swin window attention with a relative position bias
-- table. Within each window x window window of a height x width image, the
-- score gets s + bias[h, dy + R, dx + R], where (dy, dx) = q - k in pixels
-- and R = window - 1.
-- Used by: Swin Transformer, HAT, Swin UNETR (learned relative bias).
-- Params: height, width (default 8 x 8), window (default 4). Inputs: bias
-- (f32 [H, 2*window - 1, 2*window - 1]).
local a = require "attnc"

local height = a.param("height", 8, { min = 1, doc = "image rows" })
local width = a.param("width", 8, { min = 1, doc = "image columns" })
local window = a.param("window", 4, { min = 1, doc = "window side in pixels" })
local bias = a.input("bias", "f32", { "H", 2 * window - 1, 2 * window - 1 })

return a.pattern {
  grid = { height, width },
  mask = a.swin { window = window },
  score = a.bias_table(bias, window - 1),
}
