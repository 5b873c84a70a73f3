-- One instance's beat: KEYS[1] the set, ARGV[1] the instance id, ARGV[2]
-- the TTL in milliseconds. Scores are expiry instants on the Redis clock.
-- Returns the number of live instances, the caller included.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('ZCARD', KEYS[1])
