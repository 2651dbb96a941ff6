local m = redis.call('HMGET', KEYS[1], '#', '#m')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local c, a, i, l, v, rest = string.match(m[1], '^(%d+),(%d+),(%d+),(%d+),(%d+)(.*)$')
local packed = string.format('%d,%d,%d,%s,%d%s', c, now - c, i, l, v + 1, rest)
redis.call('HSET', KEYS[1], '#', packed, ARGV[10], ARGV[11])
redis.call('PEXPIRE', KEYS[1], string.format('%d', i))
return 1