-- causal.lua: causal (decoder) attention. Each token attends to itself and
-- to every earlier token: k <= q.
-- Used by: every decoder-only language model (GPT, Llama, Mistral, ...).
-- Params: none.
local a = require "attnc"

return a.pattern {
  mask = a.causal(),
}
