-- error: tests/errors/param_twice.lua:4: param window is declared twice (first at line 3)
local a = require "attnc"
local W = a.param("window", 16)
local V = a.param("window", 8)
return a.pattern { mask = a.sliding_window(W) }
