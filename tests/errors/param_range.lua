-- error: tests/errors/param_range.lua:3: param window must be >= 1 (got -3)
local a = require "attnc"
local W = a.param("window", -3, { min = 1 })
return a.pattern { mask = a.sliding_window(W) }
