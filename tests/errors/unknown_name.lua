-- error: tests/errors/unknown_name.lua:4: unknown name 'windw'
local a = require "attnc"
local window = a.param("window", 16)
return a.pattern { mask = a.sliding_window(windw) }
