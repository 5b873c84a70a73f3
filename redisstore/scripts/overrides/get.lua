-- Get: ARGV[2] field. Returns {now, body or false}.
return {now, redis.call('HGET', KEYS[1], ARGV[2])}
