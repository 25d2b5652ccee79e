-- error: tests/errors/global_assign.lua:3: cannot set global 'window'
local a = require "attnc"
window = 16
return a.pattern { mask = a.sliding_window(window) }
