-- error: tests/errors/less_than.lua:4: cannot use '<' or '>' on symbolic values (Lua turns the result into a boolean); use a:lt(b)
local a = require "attnc"
return a.pattern {
  mask = function(b, h, q, k) return k < q end,
}
