-- Set: ARGV[2] field, ARGV[3] body (JSON ending in "}", without
-- "updated"), ARGV[4] expiry in µs or "0", ARGV[5] the most overrides kept.
-- Removes expired overrides first. Returns {now, 1} when stored, {now, 0}
-- when the bound refused it.
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for i = 1, #gone do
  redis.call('HDEL', KEYS[1], gone[i])
end
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
end
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then
  return {now, 0}
end
local body = string.sub(ARGV[3], 1, -2) .. ',"updated":' .. string.format('%.0f', now) .. '000}'
redis.call('HSET', KEYS[1], ARGV[2], body)
if ARGV[4] ~= '0' then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
else
  redis.call('ZREM', KEYS[2], ARGV[2])
end
redis.call('INCR', KEYS[3])
return {now, 1}
