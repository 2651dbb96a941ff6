local m = redis.call('HMGET', KEYS[1], '#', '#m')
redis.call('HSET', KEYS[1], '#', 'x', ARGV[10], ARGV[11])
redis.call('PEXPIRE', KEYS[1], 1200000)
return 1
