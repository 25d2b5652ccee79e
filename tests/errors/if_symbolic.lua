-- error: tests/errors/if_symbolic.lua:4: cannot use '==' or '~=' on symbolic values
local a = require "attnc"
return a.pattern {
  mask = function(b, h, q, k) if q ~= k then return true end return false end,
}
