-- Token bucket as GCRA, a port of internal/algo/gcra.go.
--
-- The emission interval I = per/q µs, where per/q is Period/Quota reduced
-- by their greatest common divisor (the same rational, smaller numbers).
-- The theoretical arrival time TAT is the exact rational a + b/q µs,
-- 0 <= b < q, stored as "\0" .. struct.pack('<lll', a, b, q) (the text
-- "a b q" of earlier versions is still read). entry.lua has a
-- straight-line copy of load, check, commit and save for the common case;
-- TestFastPathMatchesGeneral runs both on the same random traces.
-- Built on first use in a script run (see BUILD in prelude.lua): the
-- body only reaches the prelude through P.
BUILD[0] = function(P)
  local floor, mmin, fmt, find, sub, tonumber, type, pairs = P.floor, P.mmin, P.fmt, P.find, P.sub, P.tonumber, P.type, P.pairs
  local tsort, tremove, rcall, rpcall, TWO53, MIN = P.tsort, P.tremove, P.rcall, P.rpcall, P.TWO53, P.MIN
  local divmod, muldiv, maxn, window_start, int = P.divmod, P.muldiv, P.maxn, P.window_start, P.int
  local nums, get_string, save_string, save_ttl = P.nums, P.get_string, P.save_string, P.save_ttl

  local function tb_add(per, q, ns, fr, n)
    local a, b = muldiv(n, per, q)
    ns = ns + a
    fr = fr + b
    if fr >= q then
      fr = fr - q
      ns = ns + 1
    end
    return ns, fr
  end

  local function tb_sub(per, q, ns, fr, n)
    local a, b = muldiv(n, per, q)
    ns = ns - a
    fr = fr - b
    if fr < 0 then
      fr = fr + q
      ns = ns - 1
    end
    return ns, fr
  end

  -- rsub returns x - y for rationals over q.
  local function rsub(q, xa, xb, ya, yb)
    local a, b = xa - ya, xb - yb
    if b < 0 then
      a = a - 1
      b = b + q
    end
    return a, b
  end

  local function rless(a1, b1, a2, b2) return a1 < a2 or (a1 == a2 and b1 < b2) end

  -- ceil_since is ceil(x - now), at least 0.
  local function ceil_since(ns, fr, now)
    if ns < now or (ns == now and fr == 0) then return 0 end
    local d = ns - now
    if fr > 0 then d = d + 1 end
    return d
  end

  -- tb_units is floor((y - x)/I) clamped to [0, limit], for x <= y.
  local function tb_units(per, q, xa, xb, ya, yb, limit)
    if not rless(xa, xb, ya, yb) then return 0 end
    local dns, dfr = ya - xa, yb - xb
    if dfr < 0 then
      dns = dns - 1
      dfr = dfr + q
    end
    local u, r = muldiv(dns, q, per)
    u = u + floor((r + dfr) / per)
    if u > limit or u < 0 then return limit end
    return u
  end

  local function tb_load(c, st)
    local v, bad = get_string(c.key)
    if bad then return false end
    st.a, st.b, st.ver = 0, 0, 0
    if v then
      local a, b, q
      if #v == 25 and P.byte(v) == 0 then
        local _
        _, a, b, q = P.sunpack('<Blll', v)
      else
        a, b, q = nums(v)
      end
      if not (a and b and q) then return false end
      if q ~= c.q then
        -- The limit changed: round the TAT up to a whole microsecond.
        if b > 0 then a = a + 1 end
        b = 0
      end
      st.a, st.b = a, b
    end
    return true
  end

  -- tb_consts caches in st the limit's tolerance tau and the interval of
  -- n units, n*I, as rationals over q: they are the same for every
  -- decision of a batch on this key.
  local function tb_consts(c, st, n)
    if st.kper ~= c.per or st.kq ~= c.q or st.kcap ~= c.cap then
      st.kper, st.kq, st.kcap, st.kn = c.per, c.q, c.cap, nil
      st.tau_a, st.tau_b = muldiv(c.cap, c.per, c.q)
    end
    if st.kn ~= n then
      st.kn = n
      st.ni_a, st.ni_b = muldiv(n, c.per, c.q)
    end
  end

  -- tb_after returns the TAT after n units taken at now, how long after
  -- now they conform, and the TAT before (internal/algo's gcraNext). When
  -- they conform only later (a reservation) at an instant that is not a
  -- whole microsecond, the TAT moves up so that they conform at the
  -- microsecond they act at, now+wait.
  local function tb_after(c, st, now, n)
    local q = c.q
    tb_consts(c, st, n)
    local ta, tb = st.a, st.b
    if ta < now then ta, tb = now, 0 end
    local xa, xb = ta + st.ni_a, tb + st.ni_b -- TAT + n*I
    if xb >= q then xa, xb = xa + 1, xb - q end
    local aa, ab = xa - st.tau_a, xb - st.tau_b -- - tau
    if ab < 0 then aa, ab = aa - 1, ab + q end
    local wait = 0
    if aa > now or (aa == now and ab > 0) then
      wait = aa - now
      if ab > 0 then wait = wait + 1 end
    end
    if wait > 0 and ab ~= 0 then
      xa, xb = now + wait + st.tau_a, st.tau_b
    end
    return xa, xb, wait, ta, tb
  end

  local function tb_check(c, st, now, cost, maxwait)
    local per, q, cap = c.per, c.q, c.cap
    local n = cost
    if n < 1 then n = 1 end
    local na, nb, wait, ta, tb = tb_after(c, st, now, n)
    local la, lb = now + st.tau_a, st.tau_b -- now + tau
    local allowed, delay = wait == 0, 0
    if not allowed and cost > 0 and wait <= maxwait then
      allowed = true
      delay = wait
    end
    if not allowed then
      return false, tb_units(per, q, ta, tb, la, lb, cap), wait, ceil_since(ta, tb, now), 0
    end
    if cost == 0 then
      na, nb = ta, tb
    else
      -- What commit will set, unless the state changes first.
      st.ca, st.cb, st.cnow, st.ccost, st.cver = na, nb, now, cost, st.ver
    end
    return true, tb_units(per, q, na, nb, la, lb, cap), 0, ceil_since(na, nb, now), delay
  end

  local function tb_commit(c, st, now, cost)
    if st.cver == st.ver and st.cnow == now and st.ccost == cost then
      st.a, st.b = st.ca, st.cb
    else
      st.a, st.b = tb_after(c, st, now, cost)
    end
    st.ver = st.ver + 1
  end

  local function tb_refund(c, st, now, at, cost)
    local per, q = c.per, c.q
    local ta, tb = st.a, st.b
    if cost <= 0 or at < now or not rless(now, 0, ta, tb) then return end
    local ga, gb = tb_add(per, q, 0, 0, cost)    -- cost*I
    local ea, eb = tb_add(per, q, at, 0, c.cap)  -- at + tau
    if rless(ea, eb, ta, tb) then
      local la, lb = rsub(q, ta, tb, ea, eb)     -- reserved after this request
      if not rless(la, lb, ga, gb) then return end
      ga, gb = rsub(q, ga, gb, la, lb)
    end
    local xa, xb = rsub(q, ta, tb, ga, gb)
    if rless(xa, xb, now, 0) then xa, xb = now, 0 end
    st.a, st.b = xa, xb
    st.ver = st.ver + 1
  end

  -- tb_norm is the TAT, or now when it is earlier.
  local function tb_norm(st, now)
    if st.a < now then return now, 0 end
    return st.a, st.b
  end

  -- tb_force moves the TAT by cost*I whether or not it conforms, to at
  -- most now + tau + maxdebt*I (internal/algo's gcraForce), and reports
  -- whether that cut it short.
  local function tb_force(c, st, now, cost)
    local per, q = c.per, c.q
    local ta, tb = tb_norm(st, now)
    local tau_a, tau_b = muldiv(c.cap, per, q)
    local la, lb = tb_add(per, q, now + tau_a, tau_b, c.maxdebt)
    local na, nb, cl = la, lb, false
    if not rless(ta, tb, la, lb) then
      na, nb, cl = ta, tb, true
    elseif cost > tb_units(per, q, ta, tb, la, lb, P.MAXDEBT) then
      cl = true
    else
      na, nb = tb_add(per, q, ta, tb, cost)
    end
    st.a, st.b = na, nb
    st.ver = st.ver + 1
    return cl
  end

  -- tb_debt is ceil((TAT - now - tau)/I), at least 0.
  local function tb_debt(c, st, now)
    local per, q = c.per, c.q
    local ta, tb = tb_norm(st, now)
    local tau_a, tau_b = muldiv(c.cap, per, q)
    local ba, bb = now + tau_a, tau_b
    if not rless(ba, bb, ta, tb) then return 0 end
    local d = tb_units(per, q, ba, bb, ta, tb, P.MAXDEBT + 1)
    local xa, xb = tb_add(per, q, ba, bb, d)
    if rless(xa, xb, ta, tb) then d = d + 1 end
    return d
  end

  -- tb_settle gives back cost units even after their instant (internal/
  -- algo's Settle): the TAT moves back by cost*I, never before now.
  local function tb_settle(c, st, now, at, cost)
    local per, q = c.per, c.q
    local ta, tb = st.a, st.b
    if cost <= 0 or not rless(now, 0, ta, tb) then return end
    if cost > tb_units(per, q, now, 0, ta, tb, P.MAXDEBT) then
      ta, tb = now, 0
    else
      ta, tb = tb_sub(per, q, ta, tb, cost)
      if rless(ta, tb, now, 0) then ta, tb = now, 0 end
    end
    st.a, st.b = ta, tb
    st.ver = st.ver + 1
  end

  local function tb_save(c, st, now)
    local exp = st.a
    if st.b > 0 then exp = exp + 1 end
    save_string(c.key, P.spack('<Blll', 0, st.a, st.b, c.q), exp, now)
  end

  return {load = tb_load, check = tb_check, commit = tb_commit, refund = tb_refund, save = tb_save, force = tb_force, debt = tb_debt, settle = tb_settle}
end
