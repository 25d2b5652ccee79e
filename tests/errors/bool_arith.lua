-- error: tests/errors/bool_arith.lua:5: 'add' expects numbers, got bool
local a = require "attnc"
return a.pattern {
  mask = function(b, h, q, k)
    return (k:le(q) + 1):gt(0)
  end,
}
