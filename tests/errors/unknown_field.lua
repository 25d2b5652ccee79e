-- error: tests/errors/unknown_field.lua:3: unknown field 'maks' in attnc.pattern (known: dtypes, grid, head_dims, mask, name, scale, score)
local a = require "attnc"
return a.pattern {
  maks = a.causal(),
}
