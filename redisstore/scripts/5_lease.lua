-- Concurrency leases, a port of internal/algo/lease.go.
-- State: a hash from lease id to "expires cost" (µs, units).
-- Built on first use in a script run (see BUILD in 0_prelude.lua): the
-- body only reaches the prelude through P.
BUILD[4] = function(P)
  local floor, mmin, fmt, find, sub, tonumber, type, pairs = P.floor, P.mmin, P.fmt, P.find, P.sub, P.tonumber, P.type, P.pairs
  local tsort, tremove, rcall, rpcall, TWO53, MIN = P.tsort, P.tremove, P.rcall, P.rpcall, P.TWO53, P.MIN
  local divmod, muldiv, maxn, window_start, int = P.divmod, P.muldiv, P.maxn, P.window_start, P.int
  local nums, get_string, save_string, save_ttl = P.nums, P.get_string, P.save_string, P.save_ttl

  local function ls_load(c, st)
    local r = rpcall('HGETALL', c.key)
    if r.err then return false end
    local l = {}
    for i = 1, #r, 2 do
      local exp, cost = nums(r[i + 1])
      if not (exp and cost) then return false end
      l[r[i]] = {exp, cost}
    end
    st.l = l
    return true
  end

  local function ls_held(st, now)
    local held, reset = 0, 0
    for _, x in pairs(st.l) do
      if x[1] > now then
        held = held + x[2]
        reset = maxn(reset, x[1] - now)
      end
    end
    return held, reset
  end

  local function ls_wait(st, now, need)
    local live = {}
    for _, x in pairs(st.l) do
      if x[1] > now then live[#live + 1] = x end
    end
    tsort(live, function(p, q) return p[1] < q[1] end)
    local freed = 0
    for i = 1, #live do
      freed = freed + live[i][2]
      if freed >= need then return live[i][1] - now end
    end
    return 0
  end

  local function ls_check(c, st, now, cost)
    local held, reset = ls_held(st, now)
    local n = cost
    if n < 1 then n = 1 end
    if held + n <= c.quota then
      if cost > 0 then reset = maxn(reset, c.per) end
      return true, c.quota - held - cost, 0, reset, 0
    end
    return false, c.quota - held, maxn(1, ls_wait(st, now, held + n - c.quota)), reset, 0
  end

  local function ls_commit(c, st, now, cost, id)
    local l = st.l
    for k, x in pairs(l) do
      if x[1] <= now then
        l[k] = nil
        rcall('HDEL', c.key, k)
      end
    end
    local exp = now + c.per
    local x = l[id]
    if x then
      x[1] = maxn(x[1], exp)
      x[2] = x[2] + cost
    else
      x = {exp, cost}
      l[id] = x
    end
    rcall('HSET', c.key, id, fmt('%d %d', x[1], x[2]))
  end

  local function ls_release(c, st, id)
    if st.l[id] then
      st.l[id] = nil
      rcall('HDEL', c.key, id)
    end
  end

  local function ls_save(c, st, now)
    local exp = MIN
    for _, x in pairs(st.l) do exp = maxn(exp, x[1]) end
    save_ttl(c.key, exp, now)
  end

  return {load = ls_load, check = ls_check, commit = ls_commit, save = ls_save, release = ls_release}
end
