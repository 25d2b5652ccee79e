-- dilated.lua: dilated window attention. A token sees every dilation-th
-- token within window * dilation of it, on both sides:
-- abs(q - k) <= window * dilation and (q - k) mod dilation == 0.
-- Used by: FaViT factorized attention, LongNet-style dilated mixtures.
-- Params: window (default 8), dilation (default 2; 1 is a plain window).
local a = require "attnc"

local window = a.param("window", 8, { min = 0, doc = "keys each side, in steps of dilation" })
local dilation = a.param("dilation", 2, { min = 1,
  doc = "step between the keys a token sees (1: a plain window)" })

return a.pattern {
  mask = a.dilated(window, dilation),
}
