-- error: tests/errors/unknown_library_field.lua:3: attnc has no field 'casual'
local a = require "attnc"
return a.pattern { mask = a.casual() }
