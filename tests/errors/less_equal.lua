-- error: tests/errors/less_equal.lua:5: cannot use '<=' or '>=' on symbolic values
local a = require "attnc"
return a.pattern {
  mask = function(b, h, q, k)
    return q >= k
  end,
}
