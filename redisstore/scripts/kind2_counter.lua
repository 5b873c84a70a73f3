-- Sliding-window counter, a port of internal/algo/counter.go.
-- State: "start curr prev". Products of units and microseconds go through
-- muldiv, so the weighted comparisons are exact.
-- Built on first use in a script run (see BUILD in prelude.lua): the
-- body only reaches the prelude through P.
BUILD[2] = function(P)
  local floor, mmin, fmt, find, sub, tonumber, type, pairs = P.floor, P.mmin, P.fmt, P.find, P.sub, P.tonumber, P.type, P.pairs
  local tsort, tremove, rcall, rpcall, TWO53, MIN = P.tsort, P.tremove, P.rcall, P.rpcall, P.TWO53, P.MIN
  local divmod, muldiv, maxn, window_start, int = P.divmod, P.muldiv, P.maxn, P.window_start, P.int
  local nums, get_string, save_string, save_ttl = P.nums, P.get_string, P.save_string, P.save_ttl

  local function sw_load(c, st)
    local v, bad = get_string(c.key)
    if bad then return false end
    st.a, st.b, st.c = MIN, 0, 0
    if v then
      local a, b, cc = nums(v)
      if not (a and b and cc) then return false end
      st.a, st.b, st.c = a, b, cc
    end
    return true
  end

  local function sw_roll(c, st, now)
    local per = c.per
    local start = window_start(now, per)
    if st.a == start then return start, st.b, st.c end
    if st.a == start - per then return start, 0, st.b end
    if st.a > start and (st.b > 0 or st.c > 0) then return st.a, st.b, st.c end
    return start, 0, 0
  end

  -- sw_fits reports whether prev*(per-el) + (curr+n)*per <= quota*per.
  local function sw_fits(c, prev, curr, n, el)
    if curr + n > c.quota then return false end
    if prev == 0 or el >= c.per then return true end
    local lq, lr = muldiv(prev, c.per - el, c.per)
    local free = c.quota - curr - n
    return lq < free or (lq == free and lr == 0)
  end

  -- sw_avail is floor(quota - curr - prev*(per-el)/per), at least 0.
  local function sw_avail(c, prev, curr, el)
    local used = curr
    if prev > 0 and el < c.per then
      local q, r = muldiv(prev, c.per - el, c.per)
      used = used + q
      if r > 0 then used = used + 1 end
    end
    return maxn(0, c.quota - used)
  end

  local function sw_wait(c, start, curr, prev, n, now)
    local per, quota = c.per, c.quota
    local el = now - start
    if curr + n <= quota then
      local free = quota - curr - n
      -- need = per - floor(free*per/prev); when that quotient would not be
      -- exact, it is far above per and need far below any elapsed time.
      local need = -TWO53
      if free < prev or free * per < TWO53 then need = per - muldiv(free, per, prev) end
      if need < el then need = el end
      return need - el
    end
    if curr == 0 then return start + per - now end
    local need = 0
    if quota - n < curr then need = maxn(0, per - muldiv(quota - n, per, curr)) end
    return start + per + need - now
  end

  local function sw_check(c, st, now, cost)
    local start, curr, prev = sw_roll(c, st, now)
    local el = now - start
    local n = cost
    if n < 1 then n = 1 end
    -- ResetAfter when the current window holds k units.
    local function reset(k)
      if k > 0 then return start + 2 * c.per - now end
      if prev > 0 then return start + c.per - now end
      return 0
    end
    if not sw_fits(c, prev, curr, n, el) then
      -- A denial charges nothing: the reset is that of the state as is.
      return false, sw_avail(c, prev, curr, el), maxn(1, sw_wait(c, start, curr, prev, n, now)), reset(curr), 0
    end
    return true, sw_avail(c, prev, curr + cost, el), 0, reset(curr + cost), 0
  end

  local function sw_commit(c, st, now, cost)
    local start, curr, prev = sw_roll(c, st, now)
    st.a, st.b, st.c = start, curr + cost, prev
  end

  -- sw_used is the estimate rounded up: ceil(prev*(per-el)/per) + curr.
  local function sw_used(c, prev, curr, el)
    local used = curr
    if prev > 0 and el < c.per then
      local q, r = muldiv(prev, c.per - el, c.per)
      used = used + q
      if r > 0 then used = used + 1 end
    end
    return used
  end

  -- sw_force charges cost whether or not it fits: the current count may
  -- grow until the estimate is quota + the debt cap.
  local function sw_force(c, st, now, cost)
    local start, curr, prev = sw_roll(c, st, now)
    local add, cl = P.cap_add(sw_used(c, prev, curr, now - start), cost, c.quota, c.maxdebt)
    st.a, st.b, st.c = start, curr + add, prev
    return cl
  end

  local function sw_debt(c, st, now)
    local start, curr, prev = sw_roll(c, st, now)
    return maxn(0, sw_used(c, prev, curr, now - start) - c.quota)
  end

  local function sw_refund(c, st, now, at, cost)
    local start, curr, prev = sw_roll(c, st, now)
    local ws = window_start(at, c.per)
    if ws == start then
      curr = maxn(0, curr - cost)
    elseif ws == start - c.per then
      prev = maxn(0, prev - cost)
    end
    st.a, st.b, st.c = start, curr, prev
  end

  local function sw_save(c, st, now)
    local exp = MIN
    if st.b > 0 then
      exp = st.a + 2 * c.per
    elseif st.c > 0 then
      exp = st.a + c.per
    end
    save_string(c.key, fmt('%d %d %d', st.a, st.b, st.c), exp, now)
  end

  return {load = sw_load, check = sw_check, commit = sw_commit, refund = sw_refund, save = sw_save, force = sw_force, debt = sw_debt}
end
