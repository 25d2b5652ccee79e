-- define: cap=thirty
-- error: tests/errors/define_float_type.lua:4: -D cap=thirty: param cap takes a number
local a = require "attnc"
local cap = a.param("cap", 30.0)
return a.pattern { mask = a.causal(), score = a.softcap(cap) }
