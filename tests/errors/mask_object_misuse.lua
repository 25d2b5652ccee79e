-- error: tests/errors/mask_object_misuse.lua:4: mask returned a mask object
local a = require "attnc"
return a.pattern {
  mask = function(b, h, q, k) return a.causal() end,
}
