-- error: tests/errors/input_rank.lua:5: blocks[i] gives one index, but input 'blocks' has 4 dims
local a = require "attnc"
local blocks = a.input("blocks", "i32", { "B", "H", "S/64", "S/64" })
return a.pattern {
  mask = function(b, h, q, k) return blocks[q // 64]:ne(0) end,
}
