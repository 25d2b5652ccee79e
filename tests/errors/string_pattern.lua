-- error: tests/errors/string_pattern.lua:2: string.find is not available in specs
local x = ("abc"):find("b")
local a = require "attnc"
return a.pattern { mask = a.causal() }
