-- A note (weir.Noter, redisstore/notes.go): one string key holding
-- "EXPIRES:VALUE", EXPIRES in µs of the store's clock, also given to Redis
-- as PX so that Redis drops it by itself.
-- KEYS[1] the note's key
-- ARGV[1] the store's test clock in µs, or "" for the Redis server's TIME
-- ARGV[2] "set" or "get"
-- ARGV[3] (set) the time to live in ms
-- ARGV[4] (set) the value
-- Set returns 1; get returns the value, or false if none or expired.
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
if ARGV[2] == 'set' then
  local ttl = tonumber(ARGV[3])
  redis.call('SET', KEYS[1], string.format('%.0f', now + ttl * 1000) .. ':' .. ARGV[4], 'PX', ttl)
  return 1
end
local v = redis.call('GET', KEYS[1])
if not v then
  return false
end
local i = string.find(v, ':', 1, true)
local exp = i and tonumber(string.sub(v, 1, i - 1))
if not exp or exp <= now then
  return false
end
return string.sub(v, i + 1)
