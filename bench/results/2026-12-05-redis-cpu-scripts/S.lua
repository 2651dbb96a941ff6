local function clock()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local unpack = unpack or table.unpack
local k = KEYS[1]
if KEYS[2] and redis.call('EXISTS', k) == 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  if string.sub(KEYS[2], -1) == '}' then redis.call('RENAME', KEYS[2], k) else k = KEYS[2] end
end
local now
local function meta(m)
  if not m[1] or m[2] then return nil end
  local c, a, i, l, v, rest = string.match(m[1], '^(%d+),(%d+),(%d+),(%d+),(%d+)(.*)$')
  if not c then return nil end
  c = tonumber(c)
  local s = { created = c, access = c + a, idle = tonumber(i), life = l, abs = c + l, version = v, rest = rest }
  now = clock()
  if now >= math.min(s.access + s.idle, s.abs) then
    redis.call('DEL', k)
    return nil
  end
  return s
end
local function pack(s, access, idle, version, rest)
  return string.format('%d,%d,%d,%s,%d%s', s.created, access - s.created, idle, s.life, version, rest)
end
local function announce(v)
  if ARGV[2] == '' then return end
  for _, name in ipairs(KEYS) do
    local key
    if string.byte(name, -1) == 125 then key = redis.sha1hex(string.sub(name, tonumber(ARGV[4]), -2)) else key = string.sub(name, -22) end
    if v then key = key .. ':' .. string.format('%d', v) else key = key .. '|' .. ARGV[3] end
    redis.call('PUBLISH', ARGV[2], key)
  end
end
local max_attributes, new_idle, principal_change, principal, set_count = tonumber(ARGV[5]), ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
local s = meta(redis.call('HMGET', k, '#', '#m'))
if not s then return {0} end
local idle, rest = s.idle, s.rest
if new_idle ~= '' then idle = tonumber(new_idle) end
if principal_change == 'set' then rest = ',' .. principal elseif principal_change == 'clear' then rest = '' end
local first, last = 10, 9 + 2 * set_count
if set_count > 0 then
  local count = redis.call('HLEN', k) - 1
  if count + set_count > max_attributes then
    local grows = set_count
    for i = first, last, 2 do
      if redis.call('HEXISTS', k, ARGV[i]) == 1 then grows = grows - 1 end
    end
    for i = last + 1, #ARGV do
      if redis.call('HEXISTS', k, ARGV[i]) == 1 then grows = grows - 1 end
    end
    if grows > 0 and count + grows > max_attributes then return {-1, count + grows} end
  end
end
if #ARGV > last then redis.call('HDEL', k, unpack(ARGV, last + 1)) end
local v = s.version + 1
redis.call('HSET', k, '#', pack(s, now, idle, v, rest), unpack(ARGV, first, last))
redis.call('PEXPIRE', k, string.format('%d', math.min(now + idle, s.abs) - now))
local old = string.sub(s.rest, 2)
announce(v)
return {1, v, string.format('%d', s.abs), s.rest ~= '' and 1 or 0, old}
