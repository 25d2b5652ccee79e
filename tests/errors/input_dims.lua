-- error: tests/errors/input_dims.lua:4: input 'route' dim 3 "S/regoin": unknown divisor 'regoin'
local a = require "attnc"
local region = a.param("region", 16)
local route = a.input("route", "i32", { "B", "H", "S/regoin", 4 })
return a.pattern { mask = a.routed { route = route, region = region } }
