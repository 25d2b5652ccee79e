-- error: tests/errors/param_doc_lines.lua:3: param window: doc must be one line of at most 200 characters
local a = require "attnc"
local window = a.param("window", 16, { min = 1, doc = "tokens each query sees\nand more" })
return a.pattern { mask = function(b, h, q, k) return (q - k):lt(window) & k:le(q) end }
