-- error: tests/errors/no_return.lua: spec must return attnc.pattern{...} (got nil)
local a = require "attnc"
local p = a.pattern { mask = a.causal() }
