-- List: returns {now, body, body, ...}, every override of every scope.
local out = redis.call('HVALS', KEYS[1])
table.insert(out, 1, now)
return out
