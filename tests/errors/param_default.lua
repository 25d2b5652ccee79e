-- error: tests/errors/param_default.lua:3: param window: the default must be a number (got the string "16")
local a = require "attnc"
local W = a.param("window", "16")
return a.pattern { mask = a.sliding_window(W) }
