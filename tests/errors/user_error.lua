-- error: tests/errors/user_error.lua:4: this spec needs a window of at least 8
local a = require "attnc"
local W = a.param("window", 4)
if W < 8 then error("this spec needs a window of at least 8") end
return a.pattern { mask = a.sliding_window(W) }
