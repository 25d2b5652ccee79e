-- temporal_window.lua: temporal windows over video tokens. Tokens form a
-- (frame, token) grid in row-major order; a token sees every token of the
-- frames within `radius` of its own: abs(frame_q - frame_k) <= radius.
-- Used by: FreeNoise (windowed temporal attention in video diffusion).
-- Params: frames (default 8), tokens per frame (default 4), radius (default 2).
local a = require "attnc"

local frames = a.param("frames", 8, { min = 1, doc = "frames in the video" })
local tokens = a.param("tokens", 4, { min = 1, doc = "tokens per frame" })
local radius = a.param("radius", 2, { min = 0, doc = "frames each side a token sees" })

return a.pattern {
  grid = { frames, tokens },
  mask = a.temporal { radius = radius },
}
