-- Version: returns {now, the version or false}.
return {now, redis.call('GET', KEYS[3])}
