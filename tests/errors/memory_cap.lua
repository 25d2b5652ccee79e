-- error: tests/errors/memory_cap.lua:4: spec uses more than
local a = require "attnc"
local t = {}
for i = 1, 1e9 do t[i] = ("x"):rep(1000) .. i end
return a.pattern { mask = a.causal() }
