-- define: window=1.5
-- error: tests/errors/define_type.lua:4: -D window=1.5: param window takes an integer
local a = require "attnc"
local W = a.param("window", 16)
return a.pattern { mask = a.sliding_window(W) }
