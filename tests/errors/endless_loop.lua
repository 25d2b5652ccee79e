-- error: tests/errors/endless_loop.lua:3: spec ran past its instruction budget
local a = require "attnc"
while true do end
return a.pattern { mask = a.causal() }
