-- error: spec ran past its instruction budget
local a = require "attnc"
while true do pcall(function() while true do end end) end
return a.pattern { mask = a.causal() }
