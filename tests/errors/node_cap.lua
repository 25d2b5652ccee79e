-- error: spec uses more than
local a = require "attnc"
return a.pattern {
  mask = function(b, h, q, k)
    local x = q
    for i = 1, 1e8 do x = x + i end
    return x:ge(k)
  end,
}
