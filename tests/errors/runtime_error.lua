-- error: tests/errors/runtime_error.lua:4: attempt to index a nil value (local 'opts')
local a = require "attnc"
local opts = nil
local w = opts.window
return a.pattern { mask = a.causal() }
