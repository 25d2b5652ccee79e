-- error: tests/errors/pattern_twice.lua:4: attnc.pattern is called twice
local a = require "attnc"
local p = a.pattern { mask = a.causal() }
return a.pattern { mask = a.sinks(4) }
