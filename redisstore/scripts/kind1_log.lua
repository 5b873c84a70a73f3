-- Sliding-window log, a port of internal/algo/swlog.go.
-- State: a sorted set whose members are "at:cost" scored by at (µs); one
-- member per instant. st.ev holds the live events, oldest first.
-- Built on first use in a script run (see BUILD in prelude.lua): the
-- body only reaches the prelude through P.
BUILD[1] = function(P)
  local floor, mmin, fmt, find, sub, tonumber, type, pairs = P.floor, P.mmin, P.fmt, P.find, P.sub, P.tonumber, P.type, P.pairs
  local tsort, tremove, rcall, rpcall, TWO53, MIN = P.tsort, P.tremove, P.rcall, P.rpcall, P.TWO53, P.MIN
  local divmod, muldiv, maxn, window_start, int = P.divmod, P.muldiv, P.maxn, P.window_start, P.int
  local nums, get_string, save_string, save_ttl = P.nums, P.get_string, P.save_string, P.save_ttl

  local function log_member(e) return fmt('%d:%d', e[1], e[2]) end

  local function log_load(c, st, now)
    local r = rpcall('ZRANGEBYSCORE', c.key, '(' .. int(now - c.per), '+inf')
    if r.err then return false end
    local ev = {}
    for i = 1, #r do
      local m = r[i]
      local k = find(m, ':', 1, true)
      if not k then return false end
      local at, cost = tonumber(sub(m, 1, k - 1)), tonumber(sub(m, k + 1))
      if not (at and cost) then return false end
      ev[i] = {at, cost}
    end
    st.ev = ev
    st.pruned = nil -- Redis may still hold events older than the window
    return true
  end

  -- log_live returns the index of the first event after now - per.
  local function log_live(c, st, now)
    local ev, from = st.ev, now - c.per
    local i = 1
    while i <= #ev and ev[i][1] <= from do i = i + 1 end
    return i
  end

  local function log_check(c, st, now, cost)
    local ev = st.ev
    local first = log_live(c, st, now)
    local used = 0
    for i = first, #ev do used = used + ev[i][2] end
    local n = cost
    if n < 1 then n = 1 end
    local reset = 0
    if first <= #ev then reset = maxn(0, ev[#ev][1] + c.per - now) end
    if used + n <= c.quota then
      if cost > 0 then reset = maxn(reset, c.per) end
      return true, c.quota - used - cost, 0, reset, 0
    end
    local need = used + n - c.quota
    local freed, wait = 0, reset
    for i = first, #ev do
      freed = freed + ev[i][2]
      if freed >= need then
        wait = ev[i][1] + c.per - now
        break
      end
    end
    return false, maxn(0, c.quota - used), maxn(1, wait), reset, 0
  end

  local function log_commit(c, st, now, cost)
    local ev = st.ev
    local first = log_live(c, st, now)
    if st.pruned ~= now - c.per then
      rcall('ZREMRANGEBYSCORE', c.key, '-inf', int(now - c.per))
      local live = {}
      for i = first, #ev do live[#live + 1] = ev[i] end
      ev = live
      st.ev = ev
      st.pruned = now - c.per
    end
    local last = ev[#ev]
    if last and last[1] >= now then
      rcall('ZREM', c.key, log_member(last))
      last[2] = last[2] + cost
      rcall('ZADD', c.key, int(last[1]), log_member(last))
      return
    end
    local e = {now, cost}
    ev[#ev + 1] = e
    rcall('ZADD', c.key, int(now), log_member(e))
  end

  local function log_used(c, st, now)
    local ev = st.ev
    local used = 0
    for i = log_live(c, st, now), #ev do used = used + ev[i][2] end
    return used
  end

  -- log_force records cost at now whether or not it fits, until the
  -- window holds quota + the debt cap. A charge into debt merges into the
  -- newest live event, moved up to now (internal/algo's force), so the
  -- log never holds more than quota events plus one.
  local function log_force(c, st, now, cost)
    local used = log_used(c, st, now)
    local add, cl = P.cap_add(used, cost, c.quota, c.maxdebt)
    local ev = st.ev
    local last = ev[#ev]
    if add > 0 and used + add > c.quota and last and last[1] > now - c.per then
      rcall('ZREM', c.key, log_member(last))
      if last[1] < now then last[1] = now end
      last[2] = last[2] + add
      rcall('ZADD', c.key, int(last[1]), log_member(last))
    elseif add > 0 then
      log_commit(c, st, now, add)
    end
    return cl
  end

  local function log_debt(c, st, now)
    return maxn(0, log_used(c, st, now) - c.quota)
  end

  local function log_refund(c, st, now, at, cost)
    local ev = st.ev
    for i = #ev, 1, -1 do
      local e = ev[i]
      if e[1] < at then return end
      if e[1] == at then
        rcall('ZREM', c.key, log_member(e))
        e[2] = e[2] - mmin(cost, e[2])
        if e[2] == 0 then
          tremove(ev, i)
        else
          rcall('ZADD', c.key, int(e[1]), log_member(e))
        end
        return
      end
    end
  end

  local function log_save(c, st, now)
    local ev = st.ev
    local exp = MIN
    if #ev > 0 then exp = ev[#ev][1] + c.per end
    save_ttl(c.key, exp, now)
  end

  return {load = log_load, check = log_check, commit = log_commit, refund = log_refund, save = log_save, force = log_force, debt = log_debt}
end
