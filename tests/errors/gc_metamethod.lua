-- error: tests/errors/gc_metamethod.lua:2: __gc metamethods are not allowed in specs
local t = setmetatable({}, { __gc = function() while true do end end })
local a = require "attnc"
return a.pattern { mask = a.causal() }
