-- error: tests/errors/mask_params_qk.lua:5: parameter 1 of this mask function is named 'q', but it receives the batch index: mask functions are called with (b, h, q, k), as FlexAttention's mask_mod; write function(b, h, q, k)
local a = require "attnc"
local chunk = a.param("chunk", 512, { min = 1 })
return a.pattern {
  mask = function(q, k) return (q // chunk):eq(k // chunk) & k:le(q) end,
}
