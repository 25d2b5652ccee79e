-- error: tests/errors/block_arg.lua:5: window must be a positive integer (got -3)
local a = require "attnc"
local W = a.param("window", 16)
return a.pattern {
  mask = a.sliding_window(W - 19),
}
