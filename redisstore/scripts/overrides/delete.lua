-- Delete: ARGV[2] field. Returns {now, the body deleted or false}.
local body = redis.call('HGET', KEYS[1], ARGV[2])
if body then
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('INCR', KEYS[3])
end
return {now, body}
