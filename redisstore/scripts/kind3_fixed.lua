-- Fixed window, a port of internal/algo/fixed.go. State: "start used".
-- Built on first use in a script run (see BUILD in prelude.lua): the
-- body only reaches the prelude through P.
BUILD[3] = function(P)
  local floor, mmin, fmt, find, sub, tonumber, type, pairs = P.floor, P.mmin, P.fmt, P.find, P.sub, P.tonumber, P.type, P.pairs
  local tsort, tremove, rcall, rpcall, TWO53, MIN = P.tsort, P.tremove, P.rcall, P.rpcall, P.TWO53, P.MIN
  local divmod, muldiv, maxn, window_start, int = P.divmod, P.muldiv, P.maxn, P.window_start, P.int
  local nums, get_string, save_string, save_ttl = P.nums, P.get_string, P.save_string, P.save_ttl

  local function fw_load(c, st)
    local v, bad = get_string(c.key)
    if bad then return false end
    st.a, st.b = MIN, 0
    if v then
      local a, b = nums(v)
      if not (a and b) then return false end
      st.a, st.b = a, b
    end
    return true
  end

  local function fw_used(c, st, now)
    local start = window_start(now, c.per)
    if st.a == start then return start, st.b end
    if st.a > start and st.b > 0 then return st.a, st.b end
    return start, 0
  end

  local function fw_check(c, st, now, cost)
    local start, used = fw_used(c, st, now)
    local ends = start + c.per
    local n = cost
    if n < 1 then n = 1 end
    if used + n > c.quota then
      return false, maxn(0, c.quota - used), ends - now, ends - now, 0
    end
    local reset = 0
    if used + cost > 0 then reset = ends - now end
    return true, c.quota - used - cost, 0, reset, 0
  end

  local function fw_commit(c, st, now, cost)
    local start, used = fw_used(c, st, now)
    st.a, st.b = start, used + cost
  end

  -- fw_force charges cost whether or not it fits (internal/algo's
  -- force): the count may pass the quota, up to quota + the debt cap.
  local function fw_force(c, st, now, cost)
    local start, used = fw_used(c, st, now)
    local add, cl = P.cap_add(used, cost, c.quota, c.maxdebt)
    st.a, st.b = start, used + add
    return cl
  end

  local function fw_debt(c, st, now)
    local _, used = fw_used(c, st, now)
    return maxn(0, used - c.quota)
  end

  local function fw_refund(c, st, now, at, cost)
    if st.a == window_start(at, c.per) then
      st.b = maxn(0, st.b - cost)
    end
  end

  local function fw_save(c, st, now)
    local exp = MIN
    if st.b ~= 0 then exp = st.a + c.per end
    save_string(c.key, fmt('%d %d', st.a, st.b), exp, now)
  end

  return {load = fw_load, check = fw_check, commit = fw_commit, refund = fw_refund, save = fw_save, force = fw_force, debt = fw_debt}
end
