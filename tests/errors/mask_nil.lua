-- error: tests/errors/mask_nil.lua:4: mask returned nothing
local a = require "attnc"
return a.pattern {
  mask = function(b, h, q, k) local m = k:le(q) end,
}
