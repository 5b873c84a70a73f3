-- One instance's beat: KEYS[1] the set, ARGV[1] the instance id, ARGV[2]
-- the TTL in milliseconds. Scores are expiry instants on the Redis clock.
-- The set itself expires with its latest member. Returns the number of
-- live instances, the caller included.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]))
return redis.call('ZCARD', KEYS[1])
