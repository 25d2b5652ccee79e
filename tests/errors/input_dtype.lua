-- error: tests/errors/input_dtype.lua:3: input 'doc': the dtype must be "i32" or "f32" (got the string "int32")
local a = require "attnc"
local doc = a.input("doc", "int32", { "S" })
return a.pattern { mask = a.documents(doc) }
