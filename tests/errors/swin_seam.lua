-- error: tests/errors/swin_seam.lua:5: attnc.swin: seam must be true or false (got 1)
local a = require "attnc"
return a.pattern {
  grid = { 8, 8 },
  mask = a.swin { window = 4, shift = 2, seam = 1 },
}
