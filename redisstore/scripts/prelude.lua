-- Weir: prelude of the general path, shared by every algorithm (the
-- files of this directory are concatenated in the order script.go lists
-- them; entry.lua reads the header and returns early for the common case,
-- so nothing below runs for it).
--
-- Time is an integer count of microseconds since the Unix epoch. Lua
-- numbers are doubles, exact below 2^53: every value here is an exact
-- integer, every division is floored and then corrected (divmod), and
-- products that could pass 2^53 go through muldiv.
--
-- Cost: a script's body runs on every call, and a closure that captures
-- the body's local variables costs far more Redis CPU than a decision.
-- So the helpers live in one table P (each closure captures P alone), and
-- each algorithm is built by BUILD[kind](P) only when a call uses it.

local P = {
  floor = math.floor, mmin = math.min,
  fmt = string.format, rep = string.rep, find = string.find, sub = string.sub,
  tonumber = tonumber, type = type, pairs = pairs,
  tsort = table.sort, tremove = table.remove,
  rcall = redis.call, rpcall = redis.pcall,
  byte = string.byte, spack = struct.pack, sunpack = struct.unpack,
  muldiv = muldiv, -- entry.lua's (the fast path uses it too)
  TWO53 = 9007199254740992,
  MIN = -9007199254740992,
  -- ttl_slack is added to every TTL, in milliseconds: 0 in production;
  -- the test-only fake clock sets it so that keys do not expire in real
  -- time while fake time stands still.
  ttl_slack = 0,
}

-- BUILD[kind](P) returns the functions of one algorithm (load, check,
-- commit, refund or release, save).
local BUILD = {}

-- divmod returns q, r with a = q*b + r and 0 <= r < b, for b > 0.
function P.divmod(a, b)
  local q = P.floor(a / b)
  local r = a - q * b
  if r < 0 then
    q = q - 1
    r = r + b
  elseif r >= b then
    q = q + 1
    r = r - b
  end
  return q, r
end

function P.maxn(a, b) if a > b then return a end return b end

-- window_start is the start of the epoch-aligned window of length per
-- that contains now.
function P.window_start(now, per)
  local q = P.divmod(now, per)
  return q * per
end

function P.int(x) return P.fmt('%d', x) end

-- MAXDEBT is weir.MaxDebtUnits, 2^50: the largest debt and forced charge.
P.MAXDEBT = 1125899906842624

-- cap_add is how much of a forced charge of cost a window holding used
-- units takes when it may hold at most quota + cap (the check's debt
-- cap), and whether that cuts the charge short (internal/algo's capAdd).
function P.cap_add(used, cost, quota, cap)
  local room = quota + cap - used
  if room < 0 then room = 0 end
  if cost > room then return room, true end
  return cost, false
end

-- ttl_ms is the TTL in milliseconds for a state that is fresh from the
-- instant exp: rounded up, so state never expires before it is fresh.
-- It is text: redis.call would print a number with "%.17g", which costs
-- more than the command it is an argument of.
function P.ttl_ms(exp, now)
  return P.fmt('%d', P.floor((exp - now + 999) / 1000) + P.ttl_slack)
end

-- nums parses "a", "a b" or "a b c" into numbers.
function P.nums(v)
  local find, sub, tonumber = P.find, P.sub, P.tonumber
  local i = find(v, ' ', 1, true)
  if not i then return tonumber(v) end
  local j = find(v, ' ', i + 1, true)
  if not j then return tonumber(sub(v, 1, i - 1)), tonumber(sub(v, i + 1)) end
  return tonumber(sub(v, 1, i - 1)), tonumber(sub(v, i + 1, j - 1)), tonumber(sub(v, j + 1))
end

-- get_string reads a string key; v, true for a key of another type.
function P.get_string(key)
  local v = P.rpcall('GET', key)
  if P.type(v) == 'table' then return nil, true end
  return v, false
end

-- save_string writes a string state with its TTL, or deletes it when it
-- is already fresh (exp <= now).
function P.save_string(key, val, exp, now)
  if exp <= now then
    P.rcall('DEL', key)
  else
    P.rcall('SET', key, val, 'PX', P.ttl_ms(exp, now))
  end
end

-- save_ttl sets the TTL of a collection key, or deletes it when fresh.
function P.save_ttl(key, exp, now)
  if exp <= now then
    P.rcall('DEL', key)
  else
    P.rcall('PEXPIRE', key, P.ttl_ms(exp, now))
  end
end
