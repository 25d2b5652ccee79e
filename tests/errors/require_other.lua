-- error: tests/errors/require_other.lua:2: require: only "attnc" is available in specs
local os = require "os"
local a = require "attnc"
return a.pattern { mask = a.causal() }
