-- neighborhood1d.lua: 1-D neighborhood attention (NATTEN). Each token sees
-- the `kernel` tokens around it, the window moved inward at the ends of the
-- sequence so every token sees exactly `kernel` keys; with dilation d the
-- tokens are grouped by position mod d and the window works within a group.
-- Works on the whole sequence (any length >= kernel * dilation).
-- Used by: NATTEN 1-D, dilated neighborhood attention (DiNAT) on sequences.
-- Params: kernel (odd, default 7), dilation (default 1).
local a = require "attnc"

local kernel = a.param("kernel", 7, { min = 1, doc = "keys each token sees (odd)" })
local dilation = a.param("dilation", 1, { min = 1, doc = "step between those keys" })

return a.pattern {
  mask = a.neighborhood { kernel = kernel, dilation = dilation },
}
