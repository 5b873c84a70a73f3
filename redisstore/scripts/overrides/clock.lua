-- Shared head of the override scripts (redisstore/overrides.go).
-- KEYS[1] hash: field SCOPE "\0" KEY -> the override as JSON
-- KEYS[2] sorted set: field -> expiry in µs (overrides that expire)
-- KEYS[3] string: the version, incremented by every change
-- ARGV[1] the store's test clock in µs, or "" for the Redis server's TIME
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
