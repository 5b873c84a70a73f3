-- The general path: a batch of independent decisions, each atomic (all
-- of its checks are decided, and only then charged, inside this one
-- script). entry.lua has read the header (now, slack, nd).
--
-- The layout of the call and of the reply is defined in wire.go: per
-- decision its packed numbers (a header of 7 int64s: op, checks, cost,
-- max wait, refund instant, statuses wanted, queue; then 6 per check:
-- kind, quota, period, capacity, reduced quota, debt cap) and its lease
-- id; KEYS
-- holds one key per check, in order. The reply is packed by reply (see
-- entry.lua).

-- Kinds (weir.Algorithm values) the general path treats apart.
local TOKEN_BUCKET, CONCURRENCY = 0, 4

local KIND = {} -- kind -> the functions BUILD made, on first use

P.ttl_slack = slack

local out = {now}
local states = {}   -- key -> state, shared by every decision of the batch
local dirty = {}    -- states to save, in first-change order
local ai, ki = 5, 1


-- mark has check c's state saved at the end of the call. The state
-- remembers what saving needs, since check tables are reused by the next
-- decision.
local function mark(c)
  local st = c.st
  if not st.dirty then
    st.dirty = true
    st.key, st.per, st.q, st.quota, st.impl = c.key, c.per, c.q, c.quota, c.impl
    dirty[#dirty + 1] = st
  end
end

-- FMT[n] is the struct format of a decision with n checks.
local FMT = {}

-- Scratch reused by every decision: check tables and per-check results.
local cs = {}
local r_al, r_rem, r_retry, r_reset, r_delay, r_debt, r_cl = {}, {}, {}, {}, {}, {}, {}

-- Ops (wire.go): 1 take, 2 refund, 3 charge (a forced take), 4 settle (a
-- forced refund).
local OP_REFUND, OP_CHARGE, OP_SETTLE = 2, 3, 4

for _ = 1, nd do
  local blob, lease = ARGV[ai], ARGV[ai + 1]
  ai = ai + 2
  local nc = (#blob / 8 - 7) / 6
  local f = FMT[nc]
  if not f then
    if nc < 1 or nc ~= floor(nc) then return {-1} end
    f = '<' .. rep('l', 7 + 6 * nc)
    FMT[nc] = f
  end
  local v = {sunpack(f, blob)}
  local op, cost, maxwait, at, want, queue = v[1], v[3], v[4], v[5], v[6] == 1, v[7]
  if v[2] ~= nc then return {-1} end
  local ok, o = true, 7
  for i = 1, nc do
    local c = cs[i]
    if not c then
      c = {}
      cs[i] = c
    end
    c.kind, c.quota, c.per, c.cap, c.q, c.maxdebt = v[o + 1], v[o + 2], v[o + 3], v[o + 4], v[o + 5], v[o + 6]
    c.key = KEYS[ki]
    o = o + 6
    if (op == OP_CHARGE or op == OP_SETTLE) and c.kind == CONCURRENCY then return {-1} end
    ki = ki + 1
    local impl = KIND[c.kind]
    if not impl and BUILD[c.kind] then
      impl = BUILD[c.kind](P)
      KIND[c.kind] = impl
    end
    c.impl = impl
    local st = states[c.key]
    if not st then
      st = {}
      if c.impl and c.impl.load(c, st, now) then
        states[c.key] = st
      else
        ok = false
      end
    end
    c.st = st
    cs[i] = c
  end

  if op == OP_REFUND or op == OP_SETTLE then
    if ok then
      if at < 0 then at = now end
      for i = 1, nc do
        local c = cs[i]
        if c.kind == CONCURRENCY then
          c.impl.release(c, c.st, lease)
        elseif op == OP_SETTLE and c.impl.settle then
          c.impl.settle(c, c.st, now, at, cost)
        else
          c.impl.refund(c, c.st, now, at, cost)
        end
        mark(c)
      end
      out[#out + 1] = 1
    else
      out[#out + 1] = -1
    end
  elseif not ok then
    out[#out + 1] = -1
    for _ = 1, 7 do out[#out + 1] = 0 end
    if want then
      for _ = 1, 7 * nc do out[#out + 1] = 0 end
    end
  elseif op == OP_CHARGE then
    -- A charge (internal/algo's Force): every check takes cost whether or
    -- not it fits, and reports what it holds after as a peek sees it; the
    -- decider is the check worst off: the longest retry, then the fewest
    -- remaining.
    local dec, arem, aretry, areset, adebt, acl = -1, 0, 0, 0, 0, false
    for i = 1, nc do
      local c = cs[i]
      local cl = false
      if cost > 0 then
        cl = c.impl.force(c, c.st, now, cost)
        mark(c)
      end
      local _, rem, retry, reset = c.impl.check(c, c.st, now, 0, 0, lease)
      local debt = c.impl.debt(c, c.st, now)
      r_rem[i], r_retry[i], r_reset[i], r_debt[i], r_cl[i] = rem, retry, reset, debt, cl
      if dec < 0 or retry > aretry or (retry == aretry and rem < arem) then
        dec, arem, aretry, areset, adebt = i, rem, retry, reset, debt
      end
      if cl then acl = true end
    end
    local n = #out
    out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5], out[n + 6], out[n + 7] = 1, dec - 1, arem, aretry, areset, 0, adebt
    if acl then out[n + 8] = 1 else out[n + 8] = 0 end
    if want then
      n = n + 8
      for i = 1, nc do
        out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5], out[n + 6] = 1, r_rem[i], r_retry[i], r_reset[i], 0, r_debt[i]
        if r_cl[i] then out[n + 7] = 1 else out[n + 7] = 0 end
        n = n + 7
      end
    end
  else
    local allowed, dec = true, -1
    local aal, arem, aretry, areset, adelay = false, 0, 0, 0, 0
    if nc > 1 and maxwait > 0 then
      -- Only token buckets can reserve: a mixed request cannot.
      for i = 1, nc do
        if cs[i].kind ~= TOKEN_BUCKET then
          maxwait = 0
          break
        end
      end
    end
    for i = 1, nc do
      local c = cs[i]
      local al, rem, retry, reset, delay = c.impl.check(c, c.st, now, cost, maxwait, lease)
      r_al[i], r_rem[i], r_retry[i], r_reset[i], r_delay[i] = al, rem, retry, reset, delay
      if dec < 0 then
        dec, aal, arem, aretry, areset, adelay = i, al, rem, retry, reset, delay
      elseif not al and (aal or retry > aretry) then
        dec, aal, arem, aretry, areset, adelay = i, al, rem, retry, reset, delay
      elseif al and aal and rem < arem then
        dec, aal, arem, aretry, areset, adelay = i, al, rem, retry, reset, delay
      end
      if not al then allowed = false end
    end
    if not allowed then
      adelay = 0
      -- Nothing is charged: limits that would have admitted report what
      -- they hold now (a peek), not what they would hold after it.
      if want then
        for i = 1, nc do
          if r_al[i] then
            local c = cs[i]
            local _, rem, _, reset = c.impl.check(c, c.st, now, 0, 0, lease)
            r_rem[i], r_reset[i], r_delay[i] = rem, reset, 0
          end
        end
      end
      -- A waiter asked to keep its place in line (internal/algo's Enqueue).
      if queue > 0 and cost > 0 and lease ~= '' then
        for i = 1, nc do
          local c = cs[i]
          if c.kind == CONCURRENCY then
            c.impl.enqueue(c, c.st, now, cost, lease, queue)
            mark(c)
          end
        end
      end
    else
      for i = 1, nc do
        if r_delay[i] > adelay then adelay = r_delay[i] end
      end
      if cost > 0 then
        -- A reservation over several buckets is recorded by each at the
        -- instant it acts (internal/algo's Decide).
        local cnow = now
        if nc > 1 and adelay > 0 then cnow = now + adelay end
        for i = 1, nc do
          local c = cs[i]
          c.impl.commit(c, c.st, cnow, cost, lease)
          mark(c)
        end
      end
    end
    local n = #out
    if allowed then out[n + 1] = 1 else out[n + 1] = 0 end
    out[n + 2], out[n + 3], out[n + 4], out[n + 5], out[n + 6], out[n + 7], out[n + 8] = dec - 1, arem, aretry, areset, adelay, 0, 0
    if want then
      n = n + 8
      for i = 1, nc do
        if r_al[i] then out[n + 1] = 1 else out[n + 1] = 0 end
        out[n + 2], out[n + 3], out[n + 4], out[n + 5], out[n + 6], out[n + 7] = r_rem[i], r_retry[i], r_reset[i], r_delay[i], 0, 0
        n = n + 7
      end
    end
  end
end

for i = 1, #dirty do
  local st = dirty[i]
  st.impl.save(st, st, now)
end
return reply(out, #out)
