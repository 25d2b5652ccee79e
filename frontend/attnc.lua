-- attnc.lua -- the spec library, `local a = require "attnc"`.
--
-- Embedded in the attnc binary (tools/embed.cmake) and run once per spec
-- in its sandbox with the C core (frontend/symbolic.c) as argument. It
-- builds on the core:
--   params and inputs       a.param, a.input
--   math and comparisons    a.min max abs clamp select exp log tanh sqrt
--                           float, a.lt le gt ge eq ne, a.all any negate;
--                           on plain numbers they compute at once, so
--                           arithmetic on params stays plain
--   masks and score mods    objects made by the building blocks below or
--                           by a.mask(fn) / a.score(fn); masks combine with
--                           & | ~, a list of score mods applies in order
--   a.pattern{...}          traces mask and score into the pattern IR
-- Nodes and errors from a building block carry the spec line that created
-- it (core.with_line). Error messages are raised with core.fail, which
-- locates them at the spec line. docs/specs.md is the user's reference.

local core = ...

local type, select, rawget, rawequal, setmetatable, ipairs, pairs, tostring =
      type, select, rawget, rawequal, setmetatable, ipairs, pairs, tostring
local mtype, floor, mexp, mlog, msqrt, mabs, mmin, mmax =
      math.type, math.floor, math.exp, math.log, math.sqrt, math.abs, math.min, math.max
local format, concat, sort, unpack = string.format, table.concat, table.sort, table.unpack
local kind, op, describe, line = core.kind, core.op, core.describe, core.line

local A = {}                     -- the module
local TAG = {}                   -- private key: "mask", "score" or "pattern"
local Mask = { __name = "attnc mask", __metatable = false }
local Score = { __name = "attnc score mod", __metatable = false }
local Pattern = { __name = "attnc pattern", __metatable = false }

local function fail(fmt, ...) core.fail(format(fmt, ...)) end
local function fail_at(ln, fmt, ...) core.fail(format(fmt, ...), ln) end

-- ------------------------------------------------------------- values

local function isnum(x) return type(x) == "number" end
local function tag(x) return type(x) == "table" and rawget(x, TAG) or nil end
local function isbool(x) return type(x) == "boolean" or kind(x) == "bool" end
local function isnumeric(x)
  local k = kind(x)
  return type(x) == "number" or k == "int" or k == "float"
end

local function need_numeric(x, what)
  if not isnumeric(x) then fail("%s: expected a number, got %s", what, describe(x)) end
  return x
end

-- a plain integer >= min ("window must be a positive integer (got -3)")
local function int_arg(x, what, min)
  if mtype(x) ~= "integer" or x < min then
    fail("%s must be a %s integer (got %s)", what, min >= 1 and "positive" or "non-negative",
         describe(x))
  end
  return x
end
local function positive(x, what) return int_arg(x, what, 1) end
local function nonneg(x, what) return int_arg(x, what, 0) end
local function odd_positive(x, what)
  positive(x, what)
  if x % 2 == 0 then fail("%s must be odd (got %d): a window of r = K//2 on each side", what, x) end
  return x
end
local function boolean(x, what)
  if type(x) ~= "boolean" then fail("%s must be true or false (got %s)", what, describe(x)) end
  return x
end

-- opts must be a plain table with only the known fields
local function options(t, what, known)
  if t == nil then return {} end
  if type(t) ~= "table" or tag(t) then
    fail("%s takes a table of options {...} (got %s)", what, describe(t))
  end
  local bad = {}
  for key in pairs(t) do
    if not known[key] then bad[#bad + 1] = tostring(key) end
  end
  if #bad > 0 then
    sort(bad)
    local names = {}
    for key in pairs(known) do names[#names + 1] = key end
    sort(names)
    fail("unknown field '%s' in %s (known: %s)", bad[1], what, concat(names, ", "))
  end
  return t
end

-- a value per grid axis: one for all, or a list; checked now, sized later
local function axis_values(x, what, check)
  if type(x) == "table" and not tag(x) then
    if #x < 1 then fail("%s: the list is empty", what) end
    local list = {}
    for i = 1, #x do list[i] = check(x[i], format("%s[%d]", what, i)) end
    return { list = list, what = what }
  end
  return { one = check(x, what), what = what }
end
local function at(v, i, n)
  if v.list then
    if #v.list ~= n then
      fail("%s gives %d values but the pattern has %d axes", v.what, #v.list, n)
    end
    return v.list[i]
  end
  return v.one
end

-- an input object of one of the allowed ranks; returns its info
local function input_arg(x, what, ranks, shapes)
  local info = core.input_info(x)
  if not info then
    fail("%s: expected an input declared with attnc.input, got %s", what, describe(x))
  end
  for _, r in ipairs(ranks) do
    if info.rank == r then return info end
  end
  fail("%s: input '%s' has %d dims; it must be %s", what, info.name, info.rank, shapes)
end

-- ------------------------------------------------------ math, plainly too

local function tofloat_if(r, a, b)
  if mtype(a) == "float" or mtype(b) == "float" then return r + 0.0 end
  return r
end

local function minmax(name, f)
  local function g(a, b, ...)
    if b == nil then fail("attnc.%s needs at least two values", name) end
    local r
    if isnum(a) and isnum(b) then r = tofloat_if(f(a, b), a, b) else r = op(name, a, b) end
    if select("#", ...) > 0 then return g(r, ...) end
    return r
  end
  return g
end
A.min = minmax("min", mmin)
A.max = minmax("max", mmax)

function A.abs(x)
  if isnum(x) then return mabs(x) end
  return op("abs", x)
end

function A.clamp(x, lo, hi)
  if isnum(lo) and isnum(hi) and lo > hi then
    fail("attnc.clamp: lo (%s) is greater than hi (%s)", describe(lo), describe(hi))
  end
  return A.min(A.max(x, lo), hi)
end

function A.select(c, x, y)
  if type(c) == "boolean" then
    if c then return x end
    return y
  end
  if kind(c) ~= "bool" then
    fail("attnc.select: the condition must be a boolean such as q:le(k) (got %s)", describe(c))
  end
  return op("select", c, x, y)
end

local function ptanh(x)
  if x ~= x then return x end
  local e = mexp(-2 * mabs(x))
  local t = (1 - e) / (1 + e)
  if x < 0 then return -t end
  return t
end

local function fmath(name, f)
  return function(x)
    if isnum(x) then return f(x + 0.0) end
    need_numeric(x, "attnc." .. name)
    return op(name, x)
  end
end
A.exp = fmath("exp", mexp)
A.log = fmath("log", function(x) return mlog(x) end)
A.tanh = fmath("tanh", ptanh)
A.sqrt = fmath("sqrt", msqrt)

function A.float(x)
  if isnum(x) then return x + 0.0 end
  need_numeric(x, "attnc.float")
  return op("tofloat", x)
end

local function cmp(name, f)
  return function(a, b)
    if b == nil or a == nil then fail("attnc.%s needs two values", name) end
    if isnum(a) and isnum(b) then return f(a, b) end
    if type(a) == "boolean" and type(b) == "boolean" and (name == "eq" or name == "ne") then
      return f(a, b)
    end
    return op(name, a, b)
  end
end
A.lt = cmp("lt", function(a, b) return a < b end)
A.le = cmp("le", function(a, b) return a <= b end)
A.gt = cmp("gt", function(a, b) return a > b end)
A.ge = cmp("ge", function(a, b) return a >= b end)
A.eq = cmp("eq", function(a, b) return a == b end)
A.ne = cmp("ne", function(a, b) return a ~= b end)

-- and, or, not over plain and symbolic booleans, folding the plain ones
local function need_bool(x, what)
  if not isbool(x) then
    fail("%s: expected a boolean (a condition such as q:le(k)), got %s", what, describe(x))
  end
  return x
end
local function land(x, y)
  if x == false or y == false then return false end
  if x == true then return y end
  if y == true then return x end
  return x & y
end
local function lor(x, y)
  if x == true or y == true then return true end
  if x == false then return y end
  if y == false then return x end
  return x | y
end
local function lnot(x)
  if type(x) == "boolean" then return not x end
  return ~x
end

function A.all(...)
  local r = true
  for i = 1, select("#", ...) do r = land(r, need_bool((select(i, ...)), "attnc.all")) end
  return r
end
function A.any(...)
  local r = false
  for i = 1, select("#", ...) do r = lor(r, need_bool((select(i, ...)), "attnc.any")) end
  return r
end
function A.negate(x) return lnot(need_bool(x, "attnc.negate")) end

-- ------------------------------------------------- masks and score mods

local function mask_obj(fn, ln)
  return setmetatable({ [TAG] = "mask", fn = fn, line = ln or line() }, Mask)
end
function Mask.__call(m, b, h, q, k) return core.with_line(m.line, m.fn, b, h, q, k) end

local function score_obj(fn, ln)
  return setmetatable({ [TAG] = "score", fn = fn, line = ln or line() }, Score)
end
function Score.__call(m, s, b, h, q, k) return core.with_line(m.line, m.fn, s, b, h, q, k) end

-- A spec function is called with FlexAttention's arguments, (b, h, q, k)
-- for a mask and (s, b, h, q, k) for a score mod, whatever it names them:
-- function(q, k) gets the batch and head indices. A parameter named for
-- another position is taken for that mistake.
local ROLE_NAMES = {
  s = "s", score = "s", b = "b", batch = "b", h = "h", head = "h",
  q = "q", q_idx = "q", qi = "q", query = "q", k = "k", kv = "k", kv_idx = "k", key = "k",
}
local ROLE_TEXT = { s = "the score", b = "the batch index", h = "the head index",
                    q = "the query index", k = "the key index" }
local function check_params(fn, kind)
  local names = core.funcparams(fn)
  if not names then return end
  local order = kind == "score" and { "s", "b", "h", "q", "k" } or { "b", "h", "q", "k" }
  for i, n in ipairs(names) do
    local role = ROLE_NAMES[n]
    if role and role ~= order[i] then
      fail_at(core.funcline(fn), "parameter %d of this %s function is named '%s', but it receives "
              .. "%s: %s functions are called with (%s), as FlexAttention's %s; write "
              .. "function(%s)", i, kind, n, ROLE_TEXT[order[i]] or "nothing", kind,
              concat(order, ", "), kind == "score" and "score_mod" or "mask_mod",
              concat(order, ", "))
    end
  end
end

-- something callable as a mask: a mask object, a function, or a boolean
local function as_mask(x, what)
  if type(x) == "function" then check_params(x, "mask") end
  if tag(x) == "mask" or type(x) == "function" then return x end
  if type(x) == "boolean" then return function() return x end end
  local hint = ""
  if kind(x) == "bool" then
    hint = " (inside a mask function, call the mask object: m(b, h, q, k) & cond)"
  end
  fail("%s: expected a mask (a function (b, h, q, k), a mask object such as attnc.causal(), "
       .. "or a boolean), got %s%s", what, describe(x), hint)
end

-- the spec line a mask or score mod comes from: where a building block was
-- made, or where the spec defines the function; nil if unknown
local function where(f)
  if tag(f) then return f.line end
  return core.funcline(f)
end

-- check what a mask gave; errors name the line of the mask (ln)
local function mask_result(r, what, ln)
  if isbool(r) then return r end
  if r == nil then
    fail_at(ln, "%s returned nothing: a mask returns a boolean such as q:ge(k) "
            .. "(a missing `return`?)", what)
  end
  if tag(r) == "mask" then
    fail_at(ln, "%s returned a mask object: pass it directly (mask = a.causal()) or call it "
            .. "with (b, h, q, k)", what)
  end
  fail_at(ln, "%s must return a boolean such as q:ge(k), got %s", what, describe(r))
end

-- check what a score mod gave
local function score_result(r, what, ln)
  if isnumeric(r) then return r end
  if r == nil then
    fail_at(ln, "%s returned nothing: a score mod returns a number such as s + bias "
            .. "(a missing `return`?)", what)
  end
  if isbool(r) then
    fail_at(ln, "%s must return a number, got %s (to drop pairs, use mask = ...)", what,
            describe(r))
  end
  fail_at(ln, "%s must return a number, got %s", what, describe(r))
end

local function combine(sym, f)
  return function(x, y)
    local what = format("'%s' on masks", sym)
    local fx, fy = as_mask(x, what), as_mask(y, what)
    local lx, ly = where(x), where(y)
    return mask_obj(function(b, h, q, k)
      return f(mask_result(fx(b, h, q, k), "mask", lx), mask_result(fy(b, h, q, k), "mask", ly))
    end)
  end
end
Mask.__band = combine("&", land)
Mask.__bor = combine("|", lor)
function Mask.__bnot(x)
  local fx, lx = as_mask(x, "'~' on a mask"), where(x)
  return mask_obj(function(b, h, q, k) return lnot(mask_result(fx(b, h, q, k), "mask", lx)) end)
end

function A.mask(fn)
  if type(fn) ~= "function" then
    fail("attnc.mask takes a function (b, h, q, k) (got %s)", describe(fn))
  end
  check_params(fn, "mask")
  local ln = core.funcline(fn)
  return mask_obj(function(b, h, q, k) return mask_result(fn(b, h, q, k), "mask", ln) end)
end

function A.score(fn)
  if type(fn) ~= "function" then
    fail("attnc.score takes a function (s, b, h, q, k) (got %s)", describe(fn))
  end
  check_params(fn, "score")
  local ln = core.funcline(fn)
  return score_obj(function(s, b, h, q, k)
    return score_result(fn(s, b, h, q, k), "score", ln)
  end)
end

-- ------------------------------------------------------ params, inputs

A.param = core.param
A.input = core.input

-- the axes a grid block works on: per axis, q's and k's coordinate and the
-- axis size; without a grid, the sequence itself (size Sk, symbolic)
local function axes(q, k)
  local g = core.grid()
  if g == nil then return { { q = q, k = k, n = core.leaf("seqk") } } end
  local r = {}
  for i = 1, #g do r[i] = { q = q:coord(i - 1), k = k:coord(i - 1), n = g[i] } end
  return r
end

-- an input indexed by a token x: [S], [B, S] or [B, H, S]
local function by_token(t, info, b, h, x)
  if info.rank == 1 then return t[x] end
  if info.rank == 2 then return t(b, x) end
  return t(b, h, x)
end

-- ------------------------------------------------ one-dimensional masks

function A.causal()
  return mask_obj(function(b, h, q, k) return k:le(q) end)
end

-- two-sided: abs(q - k) <= w
function A.window(w)
  nonneg(w, "window")
  return mask_obj(function(b, h, q, k) return A.abs(q - k):le(w) end)
end

-- causal: 0 <= q - k < w
function A.sliding_window(w)
  positive(w, "window")
  return mask_obj(function(b, h, q, k)
    local d = q - k
    return d:ge(0) & d:lt(w)
  end)
end

-- abs(q - k) <= w*d and (q - k) mod d == 0
function A.dilated(w, d)
  nonneg(w, "window")
  positive(d, "dilation")
  return mask_obj(function(b, h, q, k)
    local r = q - k
    if d == 1 then return A.abs(r):le(w) end
    return A.abs(r):le(w * d) & (r % d):eq(0)
  end)
end

function A.sinks(n)
  nonneg(n, "sinks")
  return mask_obj(function(b, h, q, k) return k:lt(n) end)
end

function A.global_tokens(g)
  nonneg(g, "global tokens")
  return mask_obj(function(b, h, q, k) return q:lt(g) | k:lt(g) end)
end

function A.prefix(p)
  nonneg(p, "prefix")
  return mask_obj(function(b, h, q, k) return k:lt(p) end)
end

-- --------------------------------------------------------- grid masks

-- NATTEN neighborhood attention, per axis of the grid (or the sequence):
-- with dilation d, tokens are grouped by residue i mod d; in a group of n
-- tokens, q' = q_i // d sees k' = k_i // d (same residue) when
-- abs(k' - clamp(q', r, n - 1 - r)) <= r, r = K // 2 (the window moves
-- inward at the borders); a causal axis sees 0 <= q' - k' < K.
function A.neighborhood(opts)
  opts = options(opts, "attnc.neighborhood", { kernel = true, dilation = true, causal = true })
  if opts.kernel == nil then fail("attnc.neighborhood needs a kernel, e.g. {kernel = 7}") end
  local kernel = axis_values(opts.kernel, "neighborhood kernel", odd_positive)
  local dilation = axis_values(opts.dilation or 1, "neighborhood dilation", positive)
  local causal = axis_values(opts.causal or false, "neighborhood causal", boolean)
  return mask_obj(function(b, h, q, k)
    local ax, m = axes(q, k), true
    for i, a in ipairs(ax) do
      local K, d, c = at(kernel, i, #ax), at(dilation, i, #ax), at(causal, i, #ax)
      local N, r = a.n, K // 2
      if isnum(N) and N < K * d then
        fail("neighborhood: axis %d has %d tokens, fewer than kernel * dilation = %d", i - 1, N,
             K * d)
      end
      local qq, kk, n, same = a.q, a.k, N, true
      if d > 1 then
        same = (a.q % d):eq(a.k % d)
        qq, kk = a.q // d, a.k // d
        if isnum(N) and N % d == 0 then n = N // d else n = (N - 1 - a.q % d) // d + 1 end
      end
      local axis
      if c then
        local diff = qq - kk
        axis = diff:ge(0) & diff:lt(K)
      else
        axis = A.abs(kk - A.clamp(qq, r, n - 1 - r)):le(r)
      end
      m = land(m, land(same, axis))
    end
    return m
  end)
end

-- Swin: the same window index on every axis after a cyclic shift by shift
-- (window index of x: ((x - shift) mod N) // window)
-- Swin windows after a cyclic shift by s (torch.roll by -s): window index
-- ((x - s) mod n) // M per axis. The last window then holds pixels from both
-- ends of the axis; Swin's attention mask keeps those apart (seam, the
-- default): pixels x < s (rolled round to the end) see only each other.
-- When M divides n, that is exactly (x - s) // M (the rolled-round pixels
-- get negative indices), which the passes tile as one box per axis.
function A.swin(opts)
  opts = options(opts, "attnc.swin", { window = true, shift = true, seam = true })
  if opts.window == nil then fail("attnc.swin needs a window, e.g. {window = 7, shift = 3}") end
  local window = axis_values(opts.window, "swin window", positive)
  local shift = axis_values(opts.shift or 0, "swin shift", nonneg)
  local seam = opts.seam
  if seam == nil then seam = true end
  if type(seam) ~= "boolean" then fail("attnc.swin: seam must be true or false (got %s)", describe(seam)) end
  return mask_obj(function(b, h, q, k)
    local ax, m = axes(q, k), true
    for i, a in ipairs(ax) do
      local M, s, N = at(window, i, #ax), at(shift, i, #ax), a.n
      local exact = seam and isnum(N) and isnum(M) and N % M == 0
      local function win(x)
        if s == 0 then return x // M end
        if exact then return (x - s) // M end
        return ((x - s) % N) // M
      end
      m = land(m, win(a.q):eq(win(a.k)))
      if seam and not exact and not (isnum(s) and s == 0) then
        -- wrapped pixels (x < s) and the others never share a window's attention
        m = land(m, lor(land(a.q:lt(s), a.k:lt(s)), land(a.q:ge(s), a.k:ge(s))))
      end
    end
    return m
  end)
end

-- HAT overlapping cross-attention: query windows of M, key windows of
-- Mo = M + floor(M * overlap) centred on them (per axis)
function A.overlapping(opts)
  opts = options(opts, "attnc.overlapping", { window = true, overlap = true })
  if opts.window == nil then fail("attnc.overlapping needs a window, e.g. {window = 8}") end
  local window = axis_values(opts.window, "overlapping window", positive)
  local g = opts.overlap or 0.5
  if not isnum(g) or g < 0 then
    fail("overlap must be a non-negative number (got %s)", describe(g))
  end
  return mask_obj(function(b, h, q, k)
    local ax, m = axes(q, k), true
    for i, a in ipairs(ax) do
      local M = at(window, i, #ax)
      local Mo = M + floor(M * g)
      local lo = (a.q // M) * M - (Mo - M) // 2
      m = land(m, a.k:ge(lo) & a.k:lt(lo + Mo))
    end
    return m
  end)
end

-- frames (grid axis 0) within radius R: abs(f_q - f_k) <= R
function A.temporal(opts)
  opts = options(opts, "attnc.temporal", { radius = true, causal = true })
  local R = nonneg(opts.radius, "temporal radius")
  local causal = opts.causal ~= nil and boolean(opts.causal, "temporal causal")
  return mask_obj(function(b, h, q, k)
    if core.grid() == nil then
      fail("attnc.temporal needs a grid {frames, ...}: tokens are (frame, ...) in row-major order")
    end
    local d = q:coord(0) - k:coord(0)
    if causal then return d:ge(0) & d:le(R) end
    return A.abs(d):le(R)
  end)
end

-- --------------------------------------------- masks from runtime data

local TOKEN_SHAPES = "[S], [B, S] or [B, H, S]"

-- documents / varlen: doc[q] == doc[k] (and k <= q inside when causal)
function A.documents(doc, opts)
  local info = input_arg(doc, "attnc.documents", { 1, 2, 3 }, TOKEN_SHAPES)
  opts = options(opts, "attnc.documents", { causal = true })
  local causal = opts.causal ~= nil and boolean(opts.causal, "documents causal")
  return mask_obj(function(b, h, q, k)
    local m = by_token(doc, info, b, h, q):eq(by_token(doc, info, b, h, k))
    if causal then m = m & k:le(q) end
    return m
  end)
end

-- clustered: cluster[q] == cluster[k]
function A.clusters(c)
  local info = input_arg(c, "attnc.clusters", { 1, 2, 3 }, TOKEN_SHAPES)
  return mask_obj(function(b, h, q, k)
    return by_token(c, info, b, h, q):eq(by_token(c, info, b, h, k))
  end)
end

-- routed top-k: region(k) in route[b, h, region(q), :] (plus q's own region)
function A.routed(opts)
  opts = options(opts, "attnc.routed", { route = true, region = true, own = true })
  local info = input_arg(opts.route, "attnc.routed route", { 2, 4 },
                         "[B, H, S/region, topk] or [S/region, topk]")
  local R = positive(opts.region, "region")
  local own = true
  if opts.own ~= nil then own = boolean(opts.own, "routed own") end
  local route = opts.route
  return mask_obj(function(b, h, q, k)
    local rq, rk = q // R, k // R
    local hit
    if info.rank == 4 then hit = route:contains(b, h, rq, rk) else hit = route:contains(rq, rk) end
    if own then hit = hit | rq:eq(rk) end
    return hit
  end)
end

-- block bitmap: blocks[b, h, q // bq, k // bk] ~= 0
function A.block_bitmap(blocks, block)
  local info = input_arg(blocks, "attnc.block_bitmap", { 2, 4 },
                         "[B, H, S/block, S/block] or [S/block, S/block]")
  local bq, bk
  if type(block) == "table" and not tag(block) then
    if #block ~= 2 then fail("block must be a size or {query block, key block}") end
    bq, bk = positive(block[1], "block[1]"), positive(block[2], "block[2]")
  else
    bq = positive(block, "block")
    bk = bq
  end
  return mask_obj(function(b, h, q, k)
    if info.rank == 4 then return blocks(b, h, q // bq, k // bk):ne(0) end
    return blocks(q // bq, k // bk):ne(0)
  end)
end

-- per-head choice: heads for which split holds use mask_a, the others mask_b;
-- split is a head count n (heads h < n) or a function (h) -> boolean
function A.per_head(split, mask_a, mask_b)
  local cond
  if mtype(split) == "integer" then
    nonneg(split, "per_head split")
    cond = function(h) return h:lt(split) end
  elseif type(split) == "function" then
    cond = function(h) return need_bool(split(h), "per_head split(h)") end
  else
    fail("attnc.per_head: split must be a head count or a function (h) -> boolean (got %s)",
         describe(split))
  end
  local fa, fb = as_mask(mask_a, "per_head mask_a"), as_mask(mask_b, "per_head mask_b")
  local la, lb = where(mask_a), where(mask_b)
  return mask_obj(function(b, h, q, k)
    local x = mask_result(fa(b, h, q, k), "per_head mask_a", la)
    local y = mask_result(fb(b, h, q, k), "per_head mask_b", lb)
    return A.select(cond(h), x, y)
  end)
end

-- ------------------------------------------------------- score mods

-- ALiBi: s + slope[h] * (k - q); slopes from an input [H], or
-- 2^(-8 (h + 1) / heads) for a head count (default: the param "heads",
-- declared here with default 8 if the spec has not declared it)
function A.alibi(x)
  local slopes, heads
  if x == nil then
    heads = core.param_value("heads") or A.param("heads", 8, { min = 1 })
  elseif mtype(x) == "integer" then
    heads = positive(x, "alibi heads")
  elseif core.input_info(x) then
    input_arg(x, "attnc.alibi", { 1 }, "[H]")
    slopes = x
  else
    fail("attnc.alibi takes an input of slopes [H], a head count, or nothing (got %s)",
         describe(x))
  end
  if heads ~= nil then positive(heads, "alibi heads") end
  return score_obj(function(s, b, h, q, k)
    local slope
    if slopes then slope = slopes[h] else slope = 2 ^ (-8 * (h + 1) / heads) end
    return s + slope * (k - q)
  end)
end

-- soft-capping: c * tanh(s / c)
function A.softcap(c)
  if not isnum(c) or not (c > 0) then fail("softcap must be a positive number (got %s)", describe(c)) end
  return score_obj(function(s, b, h, q, k) return c * A.tanh(s / c) end)
end

-- relative position bias: s + table[h, d_1 + R_1, ...], d_i = q_i - k_i
-- clamped to [-R_i, R_i]; on a grid one index per axis, else q - k
function A.bias_table(t, radius)
  local info = input_arg(t, "attnc.bias_table", { 2, 3, 4 }, "[H, 2R+1, ...] (one dim per axis)")
  local radii
  if radius == nil then
    local list = {}
    for i = 2, info.rank do
      local n = info.dims[i]
      if mtype(n) ~= "integer" or n % 2 == 0 then
        fail("attnc.bias_table: give the radius (dim %d of '%s' is not an odd constant)", i,
             info.name)
      end
      list[i - 1] = (n - 1) // 2
    end
    radii = { list = list, what = "bias_table radius" }
  else
    radii = axis_values(radius, "bias_table radius", nonneg)
  end
  return score_obj(function(s, b, h, q, k)
    local ax = axes(q, k)
    if info.rank ~= #ax + 1 then
      fail("bias_table: input '%s' has %d dims; with %d axes it needs %d ([H, 2R+1, ...])",
           info.name, info.rank, #ax, #ax + 1)
    end
    local idx = {}
    for i, a in ipairs(ax) do
      local R = at(radii, i, #ax)
      idx[i] = A.clamp(a.q - a.k, -R, R) + R
    end
    return s + t(h, unpack(idx))
  end)
end

-- logit scaling: s * f(q, b, h), or s * f for a number
function A.logit_scale(f)
  if not isnum(f) and type(f) ~= "function" then
    fail("attnc.logit_scale takes a function (q, b, h) -> number, or a number (got %s)",
         describe(f))
  end
  return score_obj(function(s, b, h, q, k)
    if isnum(f) then return s * f end
    return s * need_numeric(f(q, b, h), "logit_scale f(q)")
  end)
end

-- sink calibration: s - delta[h] where k < n (delta: input [H] or a number)
function A.sink_calibration(n, delta)
  nonneg(n, "sinks")
  if not isnum(delta) then input_arg(delta, "attnc.sink_calibration", { 1 }, "[H]") end
  return score_obj(function(s, b, h, q, k)
    local dv = delta
    if not isnum(delta) then dv = delta[h] end
    return s - A.select(k:lt(n), dv, 0.0)
  end)
end

-- ----------------------------------------------------------- the pattern

-- the score mods a pattern's score field lists, in order
local function score_list(x)
  if type(x) == "function" then check_params(x, "score") end
  if tag(x) == "score" or type(x) == "function" then return { x } end
  if type(x) == "table" and not tag(x) then
    local list = {}
    for i = 1, #x do
      local f = x[i]
      if type(f) == "function" then check_params(f, "score") end
      if tag(f) ~= "score" and type(f) ~= "function" then
        fail("score[%d]: expected a score mod (a function (s, b, h, q, k) or one such as "
             .. "attnc.alibi()), got %s", i, describe(f))
      end
      list[i] = f
    end
    return list
  end
  local hint = ""
  if tag(x) == "mask" then hint = " (a mask belongs in mask = ...)" end
  fail("score: expected a score mod (a function (s, b, h, q, k), an object such as "
       .. "attnc.softcap(30), or a list of them), got %s%s", describe(x), hint)
end

local PATTERN_FIELDS = { name = true, grid = true, mask = true, score = true, scale = true,
                         dtypes = true, head_dims = true }

-- the line of the spec's `a.pattern` (see the module's __index): specs
-- end with `return a.pattern{...}`, a tail call that leaves no spec frame
local pattern_line = 0

-- attnc.pattern{...}: trace mask and score; the spec returns the result
local function pattern(t)
  if type(t) ~= "table" or tag(t) then
    fail("attnc.pattern takes a table: attnc.pattern{ mask = ..., score = ... } (got %s)",
         describe(t))
  end
  options(t, "attnc.pattern", PATTERN_FIELDS)
  local desc = setmetatable({ [TAG] = "pattern" }, Pattern)
  core.claim(desc)
  if t.name ~= nil then core.set_name(t.name) end
  if t.grid ~= nil then core.set_grid(t.grid) end
  if t.scale ~= nil then core.set_scale(t.scale) end
  if t.dtypes ~= nil then core.set_dtypes(t.dtypes) end
  if t.head_dims ~= nil then core.set_head_dims(t.head_dims) end
  local b, h, q, k = core.leaf("batch"), core.leaf("head"), core.leaf("q"), core.leaf("k")
  if t.mask ~= nil then
    local f = as_mask(t.mask, "mask")
    core.set_mask(mask_result(f(b, h, q, k), "mask", where(t.mask)))
  end
  if t.score ~= nil then
    local mods = score_list(t.score)
    local s = core.leaf("score")
    for i, f in ipairs(mods) do
      s = score_result(f(s, b, h, q, k), #mods > 1 and format("score[%d]", i) or "score",
                       where(f))
    end
    core.set_score(s)
  end
  for key in pairs(PATTERN_FIELDS) do desc[key] = t[key] end
  return desc
end

-- ----------------------------------------------------------- the module

-- What specs get: a read-only proxy. Functions go through C trampolines
-- (core.wrap), so that a spec's `return a.f(...)`, a tail call, keeps the
-- spec's frame and its line. Reading a.pattern notes the spec's line
-- first: `return a.pattern{...}` leaves no spec frame for pattern to find.
local exported = {}
for key, v in pairs(A) do
  if type(v) == "function" then exported[key] = core.wrap(v) else exported[key] = v end
end
local pattern_entry = core.wrap(function(t) return core.with_line(pattern_line, pattern, t) end)

return setmetatable({}, {
  __index = function(_, key)
    local v = exported[key]
    if v ~= nil then return v end
    if key == "pattern" then
      pattern_line = line()
      return pattern_entry
    end
    if key == "Sq" then return core.leaf("seqq") end
    if key == "Sk" then return core.leaf("seqk") end
    fail("attnc has no field '%s'", tostring(key))
  end,
  __newindex = function(_, key)
    fail("the attnc library is read-only (cannot set '%s')", tostring(key))
  end,
  __metatable = false,
})
