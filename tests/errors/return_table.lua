-- error: tests/errors/return_table.lua: spec must return attnc.pattern{...} (got a table)
local a = require "attnc"
return { mask = a.causal() }
