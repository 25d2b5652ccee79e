-- error: tests/errors/equal.lua:4: cannot use '==' or '~=' on symbolic values (Lua turns the result into a boolean); use a:eq(b)
local a = require "attnc"
return a.pattern {
  mask = function(b, h, q, k) return (q // 64) == (k // 64) end,
}
