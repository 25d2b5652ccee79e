-- define: windw=8
-- error: tests/errors/define_unknown.lua: -D windw: the spec has no param named 'windw' (its params: window, sinks)
local a = require "attnc"
local W, n = a.param("window", 16), a.param("sinks", 4)
return a.pattern { mask = a.causal() & (a.sliding_window(W) | a.sinks(n)) }
