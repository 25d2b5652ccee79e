-- error: tests/errors/and_before_compare.lua:5: '&' combines booleans (conditions and masks), got a symbolic int; if a comparison follows, Lua applies '&' first: compare with a method, e.g. k:lt(q)
local a = require "attnc"
local chunk = a.param("chunk", 64, { min = 1 })
return a.pattern {
  mask = function(b, h, q, k) return (q // chunk):eq(k // chunk) & k < q end,
}
