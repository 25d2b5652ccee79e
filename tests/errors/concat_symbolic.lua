-- error: tests/errors/concat_symbolic.lua:4: cannot concatenate a symbolic int
local a = require "attnc"
return a.pattern {
  mask = function(b, h, q, k) error("q is " .. q) end,
}
