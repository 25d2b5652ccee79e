-- error: tests/errors/io_absent.lua:2: unknown name 'io'
local f = io.open("/etc/passwd")
local a = require "attnc"
return a.pattern { mask = a.causal() }
