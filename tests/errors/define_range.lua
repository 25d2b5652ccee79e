-- define: window=0
-- error: tests/errors/define_range.lua:4: param window must be >= 1 (got 0, from -D window=0)
local a = require "attnc"
local W = a.param("window", 16, { min = 1, max = 4096 })
return a.pattern { mask = a.sliding_window(W) }
