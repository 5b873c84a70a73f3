-- Concurrency leases, a port of internal/algo/lease.go.
-- State: a hash from lease id to "expires cost" (µs, units), and from
-- "\0" .. id to "since expires cost" for a holder waiting in line (lease
-- ids cannot contain NUL: the Go side refuses them).
-- Built on first use in a script run (see BUILD in prelude.lua): the
-- body only reaches the prelude through P.
BUILD[4] = function(P)
  local floor, mmin, fmt, find, sub, tonumber, type, pairs = P.floor, P.mmin, P.fmt, P.find, P.sub, P.tonumber, P.type, P.pairs
  local tsort, tremove, rcall, rpcall, TWO53, MIN = P.tsort, P.tremove, P.rcall, P.rpcall, P.TWO53, P.MIN
  local divmod, muldiv, maxn, window_start, int = P.divmod, P.muldiv, P.maxn, P.window_start, P.int
  local nums, get_string, save_string, save_ttl = P.nums, P.get_string, P.save_string, P.save_ttl

  local byte = P.byte

  local function ls_load(c, st)
    local r = rpcall('HGETALL', c.key)
    if r.err then return false end
    local l, w = {}, {}
    for i = 1, #r, 2 do
      local f = r[i]
      if byte(f, 1) == 0 then
        local since, exp, cost = nums(r[i + 1])
        if not (since and exp and cost) then return false end
        w[sub(f, 2)] = {since, exp, cost}
      else
        local exp, cost = nums(r[i + 1])
        if not (exp and cost) then return false end
        l[f] = {exp, cost}
      end
    end
    st.l, st.w = l, w
    return true
  end

  -- before reports whether id a sorts before id b byte by byte, as Go
  -- compares strings (Lua's < follows the locale Redis sets).
  local function before(a, b)
    local n = #a
    if #b < n then n = #b end
    for i = 1, n do
      local x, y = byte(a, i), byte(b, i)
      if x ~= y then return x < y end
    end
    return #a < #b
  end

  -- ls_ahead is the units asked for by live waiters ahead of holder id:
  -- those that joined before it, or all of them when id is not in line.
  local function ls_ahead(st, now, id)
    local me = id and id ~= '' and st.w[id]
    if me and me[2] <= now then me = nil end
    local ahead = 0
    for wid, x in pairs(st.w) do
      if x[2] > now and wid ~= id then
        if not me or x[1] < me[1] or (x[1] == me[1] and before(wid, id)) then
          ahead = ahead + x[3]
        end
      end
    end
    return ahead
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

  local function ls_check(c, st, now, cost, _, lease)
    local held, reset = ls_held(st, now)
    local free = c.quota - held
    local avail = free
    local ahead = ls_ahead(st, now, lease)
    if ahead > 0 then
      avail = free - ahead
      if free < 0 then
        if avail < free then avail = free end
      elseif avail < 0 then
        avail = 0
      end
    end
    local n = cost
    if n < 1 then n = 1 end
    if n <= avail then
      if cost > 0 then reset = maxn(reset, c.per) end
      return true, avail - cost, 0, reset, 0
    end
    return false, maxn(0, avail), maxn(1, ls_wait(st, now, n + ahead - free)), reset, 0
  end

  -- ls_prune_line drops lapsed places in line, and id's own.
  local function ls_prune_line(c, st, now, id)
    for k, x in pairs(st.w) do
      if x[2] <= now or k == id then
        st.w[k] = nil
        rcall('HDEL', c.key, '\0' .. k)
      end
    end
  end

  local function ls_commit(c, st, now, cost, id)
    local l = st.l
    for k, x in pairs(l) do
      if x[1] <= now then
        l[k] = nil
        rcall('HDEL', c.key, k)
      end
    end
    ls_prune_line(c, st, now, id)
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
    if st.w[id] then
      st.w[id] = nil
      rcall('HDEL', c.key, '\0' .. id)
    end
  end

  -- ls_enqueue puts holder id in line for cost units, or renews its place
  -- (keeping its turn), for queue µs (at most the lease TTL).
  local function ls_enqueue(c, st, now, cost, id, queue)
    ls_prune_line(c, st, now, nil)
    local untl = now + mmin(queue, c.per)
    local x = st.w[id]
    if x then
      x[2], x[3] = maxn(x[2], untl), cost
    else
      x = {now, untl, cost}
      st.w[id] = x
    end
    rcall('HSET', c.key, '\0' .. id, fmt('%d %d %d', x[1], x[2], x[3]))
  end

  local function ls_save(c, st, now)
    local exp = MIN
    for _, x in pairs(st.l) do exp = maxn(exp, x[1]) end
    for _, x in pairs(st.w) do exp = maxn(exp, x[2]) end
    save_ttl(c.key, exp, now)
  end

  return {load = ls_load, check = ls_check, commit = ls_commit, save = ls_save, release = ls_release, enqueue = ls_enqueue}
end
