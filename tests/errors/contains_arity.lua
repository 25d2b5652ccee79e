-- error: tests/errors/contains_arity.lua:5: route:contains needs 4 values
local a = require "attnc"
local route = a.input("route", "i32", { "B", "H", "S/16", 4 })
return a.pattern {
  mask = function(b, h, q, k) return route:contains(q // 16, k // 16) end,
}
