-- error: tests/errors/load_absent.lua:2: unknown name 'load'
local f = load("return 1")
local a = require "attnc"
return a.pattern { mask = a.causal() }
