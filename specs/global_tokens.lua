-- global_tokens.lua: a two-sided window plus global tokens (arrow
-- attention): the first `globals` tokens see everything and are seen by
-- everything: abs(q - k) <= window or q < globals or k < globals.
-- Used by: Longformer-style [CLS] tokens, SeNER arrow attention.
-- Params: window (default 8; 256 to 512 in practice), globals (default 2).
local a = require "attnc"

local window = a.param("window", 8, { min = 0, doc = "keys each side of a token" })
local globals = a.param("globals", 2, { min = 0,
  doc = "leading tokens that see and are seen by all" })

return a.pattern {
  mask = a.window(window) | a.global_tokens(globals),
}
