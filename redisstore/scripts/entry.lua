-- Weir's decision script. The Go package concatenates the files of this
-- directory into one script, in the order script.go lists them: this
-- file reads the call's header and runs the common case; prelude.lua,
-- the algorithms (kindK_*.lua builds weir.Algorithm K) and main.lua are
-- the general path.
--
-- The call's layout (KEYS, ARGV, the packed numbers, the reply) is
-- defined once, in wire.go: ARGV[1] now in µs or "" for the server's
-- clock, ARGV[2] extra TTL in ms, ARGV[3] the number of decisions,
-- ARGV[4] the path: "2" or "1" for the fast path below (no key repeats,
-- or some may), "0" for the general path.
--
-- Cost. Redis runs a script's whole body on every call (EVALSHA included):
-- every function definition it reaches builds a closure and every table
-- constructor a table. The common case, a batch of single token-bucket
-- takes (what weir.Limiter.Allow sends), is therefore straight-line code
-- here with no closure and no table per decision, and returns before the
-- general path's definitions are reached.

if redis.replicate_commands then redis.replicate_commands() end

local ARGV, KEYS = ARGV, KEYS
local tonumber, floor, rep, rcall, rpcall = tonumber, math.floor, string.rep, redis.call, redis.pcall
local sunpack, spack, byte, type, unpack, fmt = struct.unpack, struct.pack, string.byte, type, unpack, string.format
local TWO53 = 9007199254740992

local now
if ARGV[1] == '' then
  local t = rcall('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local slack = tonumber(ARGV[2])
local nd = tonumber(ARGV[3])

-- muldiv returns q, r with a*b = q*c + r and 0 <= r < c, for a, b >= 0 and
-- 0 < c < 2^52, when q < 2^53: exactly, even when a*b is not below 2^53
-- (then by binary long multiplication modulo c). Both paths use it (the
-- general path as P.muldiv): it is defined here, before the fast path
-- returns, once per call.
local function muldiv(a, b, c)
  local p = a * b
  if p < TWO53 then
    local u = floor(p / c)
    local r = p - u * c
    if r < 0 then return u - 1, r + c elseif r >= c then return u + 1, r - c end
    return u, r
  end
  local qa = floor(a / c) -- a*b = qa*b*c + ra*b
  local ra = a - qa * c
  if ra < 0 then qa, ra = qa - 1, ra + c elseif ra >= c then qa, ra = qa + 1, ra - c end
  local bits, x = {}, b
  while x > 0 do
    local h = floor(x / 2)
    bits[#bits + 1] = x - 2 * h
    x = h
  end
  local mq, r = 0, 0
  for k = #bits, 1, -1 do
    mq, r = mq * 2, r * 2
    if r >= c then r, mq = r - c, mq + 1 end
    if bits[k] == 1 then
      r = r + ra
      if r >= c then r, mq = r - c, mq + 1 end
    end
  end
  return qa * b + mq, r
end

-- reply returns out[1..n] packed as little-endian int64s: one bulk string
-- costs Redis far less than an array of n integer replies.
local function reply(out, n)
  if n <= 4000 then return spack('<' .. rep('l', n), unpack(out, 1, n)) end
  local parts = {}
  for i = 1, n, 4000 do
    local j = i + 3999
    if j > n then j = n end
    parts[#parts + 1] = spack('<' .. rep('l', j - i + 1), unpack(out, i, j))
  end
  return table.concat(parts)
end

local path = ARGV[4]
if path == '1' or path == '2' then
  -- Token bucket as GCRA (internal/algo/gcra.go; the general version with
  -- its comments is kind0_gcra.lua: TestFastPathMatchesGeneral runs both
  -- on the same random traces). The TAT
  -- is the exact rational a + b/q µs; state "\0" .. pack('<lll', a, b, q)
  -- (the text "a b q" of earlier versions is still read).
  --
  -- When no key repeats ("2"), each decision reads its key's state from
  -- the MGET below and saves it at once. When keys may repeat ("1"), a
  -- later decision on a key must see the earlier one's state: states are
  -- kept by key (IX[key] = j, and from ST[j+1] on six slots: the TAT a
  -- and b, q, the key, whether a take charged it, and whether MGET found
  -- nothing) and saved at the end; RW[i] is where decision i's reply
  -- starts in out. The caller knows which holds, and the first costs
  -- Redis less.
  local dup = path == '1'
  local out, no = {now}, 1
  local IX, ST, RW, nj = nil, nil, nil, 0
  if dup then IX, ST, RW = {}, {}, {} end
  -- save writes a TAT a + b/q that a take charged, with a TTL of the time
  -- until it passes, and reports whether it could. A number handed to
  -- redis.call is printed with "%.17g", which costs more than the SET:
  -- a TTL is printed with "%d" and reused while the next is the same (in
  -- a batch on one limit, most are).
  --
  -- MGET answers nil both for a missing key and for one of another type.
  -- Rather than ask which (one more command per call), a state that MGET
  -- did not find (fresh) is written with SET NX, which fails, and then
  -- save reports false, only when the key holds another type; the
  -- decisions on that key then fail, and the key is left alone.
  local lastms, lastpx
  local function save(key, a, b, q, fresh)
    local exp = a
    if b > 0 then exp = exp + 1 end
    if exp <= now then
      if not fresh then rcall('DEL', key) end
      return true
    end
    local ms = floor((exp - now + 999) / 1000) + slack
    if ms ~= lastms then lastms, lastpx = ms, fmt('%d', ms) end
    local px = lastpx
    if fresh then
      return rcall('SET', key, spack('<Blll', 0, a, b, q), 'PX', px, 'NX')
    end
    rcall('SET', key, spack('<Blll', 0, a, b, q), 'PX', px)
    return true
  end
  -- Read every key with MGET: one command's overhead instead of one per
  -- key.
  local MV
  if nd <= 1000 then
    MV = rcall('MGET', unpack(KEYS, 1, nd))
  else
    MV = {}
    for i0 = 1, nd, 1000 do
      local i1 = i0 + 999
      if i1 > nd then i1 = nd end
      local r = rcall('MGET', unpack(KEYS, i0, i1))
      for i = i0, i1 do MV[i] = r[i - i0 + 1] end
    end
  end
  -- A batch mostly repeats one limit and cost: a decision whose packed
  -- numbers are the previous one's reuses their parse and tau and n*I. The
  -- caller sends "" for those; equal strings are caught too (Lua interns
  -- strings, so == compares pointers). Every decision's numbers are
  -- checked before the first is decided, since decisions on distinct keys
  -- are saved as they go: a malformed call changes nothing. A take whose
  -- numbers differ from the previous one's in cost alone (a
  -- localquota.Store's blocks: one limit, a size per key) is sent as its
  -- cost, 8 bytes: only n*I is computed again.
  local last
  for i = 1, nd do
    local blob = ARGV[4 + i]
    if blob == '' or #blob == 8 then
      if not last then return {-1} end
    elseif blob ~= last then
      if #blob ~= 104 then return {-1} end
      local op, nc, _, _, _, _, _, kind = sunpack('<llllllll', blob)
      if op ~= 1 or nc ~= 1 or kind ~= 0 then return {-1} end
      last = blob
    end
  end
  last = nil
  local cost, maxwait, want, per, cap, q, ta, tb, ia, ib
  for i = 1, nd do
    local blob = ARGV[4 + i]
    if blob ~= '' and blob ~= last then
      if #blob == 8 then
        cost = sunpack('<l', blob)
      else
        local _
        _, _, cost, maxwait, _, want, _, _, _, per, cap, q = sunpack('<lllllllllllll', blob)
        -- tau = cap*per/q, as a rational over q.
        ta, tb = muldiv(cap, per, q)
      end
      local n = cost
      if n < 1 then n = 1 end
      -- n*I = n*per/q, as a rational over q.
      ia, ib = muldiv(n, per, q)
      last = blob
    end
    local key = KEYS[i]
    local j
    if dup then j = IX[key] end
    local a, b, fresh
    if j then
      a, b, fresh = ST[j + 1], ST[j + 2], ST[j + 6]
      if a and ST[j + 3] ~= q then
        if b > 0 then a = a + 1 end
        b = 0
        ST[j + 1], ST[j + 2], ST[j + 3] = a, b, q
      end
    else
      -- Load.
      a, b = 0, 0
      local v = MV[i]
      fresh = not v
      if v then
        if #v == 25 and byte(v) == 0 then
          local _, x, y, z = sunpack('<Blll', v)
          a, b = x, y
          if z ~= q then
            -- The limit changed: round the TAT up to a whole microsecond.
            if b > 0 then a = a + 1 end
            b = 0
          end
        else
          local s1 = v:find(' ', 1, true)
          local s2 = s1 and v:find(' ', s1 + 1, true)
          local x = s2 and tonumber(v:sub(1, s1 - 1))
          local y = x and tonumber(v:sub(s1 + 1, s2 - 1))
          local z = y and tonumber(v:sub(s2 + 1))
          if not z then
            a = false
          else
            a, b = x, y
            if z ~= q then
              if b > 0 then a = a + 1 end
              b = 0
            end
          end
        end
      end
      if dup then
        j = nj
        nj = nj + 6
        IX[key], ST[j + 1], ST[j + 2], ST[j + 3], ST[j + 4], ST[j + 5], ST[j + 6] = j, a, b, q, key, false, fresh
      end
    end
    -- The decision: allowed (-1: the key holds something else), remaining,
    -- wait, reset.
    local al, rem, wait, reset = -1, 0, 0, 0
    if a then
      -- The TAT after n units at now, and how long after now they conform.
      local sa, sb = a, b
      if sa < now then sa, sb = now, 0 end
      local xa, xb = sa + ia, sb + ib
      if xb >= q then xa, xb = xa + 1, xb - q end
      local ya, yb = xa - ta, xb - tb
      if yb < 0 then ya, yb = ya - 1, yb + q end
      if ya > now or (ya == now and yb > 0) then
        wait = ya - now
        if yb > 0 then wait = wait + 1 end
      end
      if wait > 0 and yb ~= 0 then xa, xb = now + wait + ta, tb end
      -- Admitted when the units conform now, or (a take of at least one
      -- unit) within maxwait; report the state after, or as it is when
      -- denied or when nothing was taken.
      local ra, rb = xa, xb
      al = 1
      if wait > 0 and (cost == 0 or wait > maxwait) then
        al, ra, rb = 0, sa, sb
      elseif cost == 0 then
        ra, rb = sa, sb
      elseif dup then
        ST[j + 1], ST[j + 2], ST[j + 5] = xa, xb, true
      elseif not save(key, xa, xb, q, fresh) then
        al, wait = -1, 0
      end
      if al >= 0 then
        -- Remaining: floor((now + tau - TAT)/I) clamped to [0, cap].
        local la, lb = now + ta, tb
        if ra < la or (ra == la and rb < lb) then
          local da, db = la - ra, lb - rb
          if db < 0 then da, db = da - 1, db + q end
          local u, r = muldiv(da, q, per)
          u = u + floor((r + db) / per)
          if u > cap or u < 0 then u = cap end
          rem = u
        end
        -- Reset: ceil(TAT - now), at least 0.
        if ra > now or (ra == now and rb > 0) then
          reset = ra - now
          if rb > 0 then reset = reset + 1 end
        end
      end
    end
    if dup then RW[i] = no end
    out[no + 1], out[no + 2], out[no + 3], out[no + 4] = al, rem, wait, reset
    no = no + 4
    if want == 1 then
      local retry, delay = wait, 0
      if al == 1 then retry, delay = 0, wait end
      if al < 0 then al = 0 end
      out[no + 1], out[no + 2], out[no + 3], out[no + 4], out[no + 5], out[no + 6], out[no + 7] = al, rem, retry, reset, delay, 0, 0
      no = no + 7
    end
  end
  -- Save the kept states. A key that turns out to hold another type fails
  -- every decision made on it: their replies become -1 and zeros.
  local bad
  for j = 0, nj - 6, 6 do
    if ST[j + 5] and not save(ST[j + 4], ST[j + 1], ST[j + 2], ST[j + 3], ST[j + 6]) then
      bad = bad or {}
      bad[ST[j + 4]] = true
    end
  end
  if bad then
    RW[nd + 1] = no
    for i = 1, nd do
      if bad[KEYS[i]] then
        for k = RW[i] + 1, RW[i + 1] do out[k] = 0 end
        out[RW[i] + 1] = -1
      end
    end
  end
  return reply(out, no)
end
