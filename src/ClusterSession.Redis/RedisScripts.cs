namespace ClusterSession.Redis;

/// <summary>
/// The Lua scripts of the store, one per operation, each touching exactly one key (so one hash slot:
/// Redis Cluster safe). docs/redis-data-model.md describes every field and argument. Numbers go out
/// through string.format('%d') so Lua 5.1 (Redis) and Lua 5.4 (Garnet) write the same digits.
/// </summary>
internal static class RedisScripts
{
    // "now" is the store's clock: Redis TIME, read inside the script, so every node of the application
    // judges expiry on the same clock whatever its own says. ARGV[1] is empty then; a test clock
    // (a TimeProvider other than the system's) sends its milliseconds instead. TIME is allowed in a
    // writing script because Redis 7 replicates a script's effects, not the script.
    private const string Clock = """
        local function clock()
          if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
          local t = redis.call('TIME')
          return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end

        """;

    // HMGET of the metadata every write checks: 1 last access, 2 idle ms, 3 absolute expiry, 4 moving, 5 principal.
    // A session is live when its metadata is complete, it is not being moved to a new id, and the
    // store's clock is before min(last access + idle, absolute expiry).
    private const string Prelude = Clock + """
        local unpack = unpack or table.unpack
        local function n(x) return string.format('%d', x) end
        local k = KEYS[1]
        local now = clock()
        local function meta()
          local m = redis.call('HMGET', k, '#a', '#i', '#x', '#m', '#p')
          local access, idle, abs = tonumber(m[1]), tonumber(m[2]), tonumber(m[3])
          if not access or not idle or not abs or m[4] then return nil end
          if now >= math.min(access + idle, abs) then
            redis.call('DEL', k)
            return nil
          end
          return { access = access, idle = idle, abs = abs, principal = m[5] }
        end
        local function touch(idle, abs)
          redis.call('HSET', k, '#a', n(now))
          redis.call('PEXPIRE', k, n(math.min(now + idle, abs) - now))
        end
        local function attributes()
          return redis.call('HLEN', k) - 5 - redis.call('HEXISTS', k, '#p')
        end

        """;

    // Reads the whole hash in one call; parses the metadata from it rather than with a second command.
    private const string ReadAll = """
        local function readall()
          local h = redis.call('HGETALL', k)
          if #h == 0 then return nil end
          local access, idle, abs, moving, at
          for i = 1, #h, 2 do
            local f = h[i]
            if f == '#a' then access = tonumber(h[i + 1]); at = i + 1
            elseif f == '#i' then idle = tonumber(h[i + 1])
            elseif f == '#x' then abs = tonumber(h[i + 1])
            elseif f == '#m' then moving = true end
          end
          if not access or not idle or not abs or moving then return nil end
          if now >= math.min(access + idle, abs) then
            redis.call('DEL', k)
            return nil
          end
          return h, access, idle, abs, at
        end

        """;

    /// <summary>Stands for the near cache's announce() function in the scripts that change a session; see <see cref="WithAnnounce"/>.</summary>
    public const string AnnouncePlaceholder = "@ANNOUNCE@";

    // announce(version) tells every node's near cache that the session changed to that version; announce() that it
    // ended. The store writes the function in (WithAnnounce): a PUBLISH on the near cache's channel when the cache is
    // on, nothing when it is off. Each changing script calls it once, just before its successful return.
    private const string Announce = AnnouncePlaceholder + "\n";

    /// <summary>KEYS[1] session; ARGV clock, touch-fraction-per-mille. Returns the hash (flat field/value array) or nil.</summary>
    public const string Load = Prelude + ReadAll + """
        local h, access, idle, abs, at = readall()
        if not h then return false end
        if now - access >= idle * tonumber(ARGV[2]) / 1000 then
          touch(idle, abs)
          h[at] = n(now)
        end
        return h
        """;

    /// <summary>
    /// KEYS[1] session; ARGV clock, absolute lifetime ms (a new session: the script dates its creation, last
    /// access and absolute expiry on the store's clock) or '-' (a copy under a new id: the fields keep their
    /// dates), then field/value pairs. Returns 1 created, 0 taken.
    /// </summary>
    public const string Create = Prelude + """
        if redis.call('EXISTS', k) == 1 then
          if redis.call('HEXISTS', k, '#m') == 1 or meta() then return 0 end
          redis.call('DEL', k)
        end
        redis.call('HSET', k, unpack(ARGV, 3))
        if ARGV[2] ~= '-' then
          redis.call('HSET', k, '#c', n(now), '#a', n(now), '#x', n(now + tonumber(ARGV[2])))
        end
        local m = redis.call('HMGET', k, '#a', '#i', '#x')
        local expires = math.min(tonumber(m[1]) + tonumber(m[2]), tonumber(m[3]))
        redis.call('PEXPIRE', k, n(math.max(1, expires - now)))
        return 1
        """;

    /// <summary>Stands for the store's attribute limit in <see cref="Save"/>; see <see cref="SaveWithLimit"/>.</summary>
    public const string MaxAttributesPlaceholder = "@MAX_ATTRIBUTES@";

    /// <summary>
    /// KEYS[1] session; ARGV clock, shape, then (when the shape says so) new-idle-ms and principal, set
    /// field/value pairs, removed fields. The shape is the set count followed by flags: 'i' a new idle
    /// timeout follows, 'p' a principal follows (set it), 'c' clear the principal. A one-attribute write
    /// sends only now, '1', field and value: the attribute limit is part of the script text, not an argument.
    /// Returns {1, version, absolute-ms, had-principal, old-principal}, {0} gone, {-1, count} over the limit.
    /// </summary>
    public const string Save = Prelude + Announce + """
        local s = meta()
        if not s then return {0} end
        local nset, flags = string.match(ARGV[2], '^(%d+)(%a*)$')
        nset = tonumber(nset)
        local pos = 3
        local newidle, principal
        if string.find(flags, 'i', 1, true) then newidle = ARGV[pos]; pos = pos + 1 end
        if string.find(flags, 'p', 1, true) then principal = ARGV[pos]; pos = pos + 1 end
        local first, last = pos, pos - 1 + 2 * nset
        local added, removed = 0, 0
        for i = first, last, 2 do
          if redis.call('HEXISTS', k, ARGV[i]) == 0 then added = added + 1 end
        end
        for i = last + 1, #ARGV do
          if redis.call('HEXISTS', k, ARGV[i]) == 1 then removed = removed + 1 end
        end
        if added > removed then
          local count = attributes() + added - removed
          if count > @MAX_ATTRIBUTES@ then return {-1, count} end
        end
        if #ARGV > last then redis.call('HDEL', k, unpack(ARGV, last + 1)) end
        if nset > 0 then redis.call('HSET', k, unpack(ARGV, first, last)) end
        if principal then redis.call('HSET', k, '#p', principal)
        elseif string.find(flags, 'c', 1, true) then redis.call('HDEL', k, '#p') end
        local idle = s.idle
        if newidle then
          idle = tonumber(newidle)
          redis.call('HSET', k, '#i', newidle)
        end
        local v = redis.call('HINCRBY', k, '#v', 1)
        touch(idle, s.abs)
        announce(v)
        return {1, v, n(s.abs), s.principal and 1 or 0, s.principal or ''}
        """;

    /// <summary>
    /// <paramref name="script"/> with its announce() function written in: with <paramref name="channel"/>, a PUBLISH of
    /// the SHA-1 (hex) of the session id (the key's text from byte <paramref name="idStart"/>, 1-based, to before its
    /// closing brace: never the id itself, which is a credential), followed by ':' and the version for a change; without
    /// it (the near cache is off) a function that does nothing.
    /// </summary>
    public static string WithAnnounce(string script, string? channel, int idStart)
    {
        var function = channel is null
            ? "local function announce() end"
            : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"""
                local function announce(v)
                  local key = redis.sha1hex(string.sub(KEYS[1], {idStart}, -2))
                  if v then key = key .. ':' .. string.format('%d', v) end
                  redis.call('PUBLISH', '{LuaEscape(channel)}', key)
                end
                """);
        return script.Replace(AnnouncePlaceholder, function, StringComparison.Ordinal);
    }

    /// <summary><see cref="Save"/> with the attribute limit written in (one cached script per limit).</summary>
    public static string SaveWithLimit(int maxAttributes)
        => Save.Replace(MaxAttributesPlaceholder, maxAttributes.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);

    // The content of a Lua single-quoted string: letters, digits and a few safe marks as they are, every other byte as a decimal escape.
    private static string LuaEscape(string text)
    {
        var builder = new System.Text.StringBuilder(text.Length);
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(text))
        {
            if (char.IsAsciiLetterOrDigit((char)b) || b is (byte)':' or (byte)'-' or (byte)'_' or (byte)'.' or (byte)'/')
            {
                builder.Append((char)b);
            }
            else
            {
                builder.Append('\\').Append(b.ToString("000", System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        return builder.ToString();
    }

    /// <summary>
    /// KEYS[1] session; ARGV clock, field, has-expected, expected, has-replacement, replacement, max-attributes.
    /// Returns {1} set, {0} gone, {2, 1, current} or {2, 0} mismatch, {-1, count} over the limit.
    /// </summary>
    public const string CompareAndSet = Prelude + Announce + """
        local s = meta()
        if not s then return {0} end
        local cur = redis.call('HGET', k, ARGV[2])
        if ARGV[3] == '1' then
          if cur ~= ARGV[4] then
            if cur then return {2, 1, cur} else return {2, 0} end
          end
        elseif cur then
          return {2, 1, cur}
        end
        if ARGV[5] == '1' then
          if not cur then
            local count = attributes() + 1
            if count > tonumber(ARGV[7]) then return {-1, count} end
          end
          redis.call('HSET', k, ARGV[2], ARGV[6])
        elseif cur then
          redis.call('HDEL', k, ARGV[2])
        end
        local v = redis.call('HINCRBY', k, '#v', 1)
        touch(s.idle, s.abs)
        announce(v)
        return {1}
        """;

    /// <summary>KEYS[1] session; ARGV clock. Deletes the key. Returns {was-live, had-principal, principal}.</summary>
    public const string Delete = Prelude + Announce + """
        local s = meta()
        redis.call('DEL', k)
        announce()
        if not s then return {0, 0, ''} end
        return {1, s.principal and 1 or 0, s.principal or ''}
        """;

    /// <summary>
    /// First step of an id change. KEYS[1] old session; ARGV clock. Marks a live session as moving
    /// (saves and loads then treat it as gone) and returns its hash; nil when absent.
    /// </summary>
    public const string BeginMove = Prelude + ReadAll + Announce + """
        local h = readall()
        if not h then return false end
        redis.call('HSET', k, '#m', '1')
        announce()
        return h
        """;

    /// <summary>Undoes <see cref="BeginMove"/> when the new id is taken. KEYS[1] old session.</summary>
    public const string AbortMove = """
        return redis.call('HDEL', KEYS[1], '#m')
        """;

    /// <summary>
    /// KEYS[1] principal index; ARGV clock, then operations: 'a', id, absolute-ms (add), 'l', id, lifetime-ms
    /// (add, scored the store's clock plus the lifetime) or 'r', id (remove).
    /// Prunes entries whose absolute expiry has passed and sets the key's TTL to its latest expiry.
    /// </summary>
    public const string Index = Clock + """
        local function n(x) return string.format('%d', x) end
        local k = KEYS[1]
        local now = clock()
        local i = 2
        while i <= #ARGV do
          if ARGV[i] == 'a' then
            redis.call('ZADD', k, ARGV[i + 2], ARGV[i + 1])
            i = i + 3
          elseif ARGV[i] == 'l' then
            redis.call('ZADD', k, n(now + tonumber(ARGV[i + 2])), ARGV[i + 1])
            i = i + 3
          else
            redis.call('ZREM', k, ARGV[i + 1])
            i = i + 2
          end
        end
        redis.call('ZREMRANGEBYSCORE', k, '-inf', n(now))
        local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
        if #top == 0 then return 0 end
        redis.call('PEXPIRE', k, n(tonumber(top[2]) - now))
        return 1
        """;

    /// <summary>
    /// KEYS[1] principal index; ARGV clock. Prunes entries whose absolute expiry has passed by the store's
    /// clock and returns the ids left.
    /// </summary>
    public const string IndexMembers = Clock + """
        local now = clock()
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
        return redis.call('ZRANGE', KEYS[1], 0, -1)
        """;

    /// <summary>
    /// KEYS[1] session; ARGV clock. Reads the hash without touching it: nil when absent or expired by the
    /// store's clock, else the flat field/value array (a hash being moved keeps its '#m' field).
    /// </summary>
    public const string Peek = Clock + """
        local now = clock()
        local h = redis.call('HGETALL', KEYS[1])
        if #h == 0 then return false end
        local access, idle, abs
        for i = 1, #h, 2 do
          local f = h[i]
          if f == '#a' then access = tonumber(h[i + 1])
          elseif f == '#i' then idle = tonumber(h[i + 1])
          elseif f == '#x' then abs = tonumber(h[i + 1]) end
        end
        if access and idle and abs and now >= math.min(access + idle, abs) then return false end
        return h
        """;
}

/// <summary>The script of the per-principal session cap (RedisSessionStore.Cap.cs).</summary>
internal static class RedisCapScripts
{
    /// <summary>
    /// KEYS[1] principal index; ARGV clock, id, absolute-ms, max, policy ('e' end oldest, 'r' refuse).
    /// On the index key only (one slot): prunes entries whose absolute expiry has passed by the store's clock,
    /// then admits the id unless it is listed already: at the cap it refuses ({0}) or pops the lowest scores
    /// (first absolute expiry: the oldest sessions) to make room. Returns {1, ended ids...} when admitted.
    /// </summary>
    public const string Admit = """
        local function n(x) return string.format('%d', x) end
        local k = KEYS[1]
        local now
        if ARGV[1] ~= '' then now = tonumber(ARGV[1]) else
          local t = redis.call('TIME')
          now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        redis.call('ZREMRANGEBYSCORE', k, '-inf', n(now))
        if redis.call('ZSCORE', k, ARGV[2]) then return {1} end
        local max = tonumber(ARGV[4])
        local count = redis.call('ZCARD', k)
        local result = {1}
        if count >= max then
          if ARGV[5] == 'r' then return {0} end
          local popped = redis.call('ZPOPMIN', k, count - max + 1)
          for i = 1, #popped, 2 do result[#result + 1] = popped[i] end
        end
        redis.call('ZADD', k, ARGV[3], ARGV[2])
        local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
        redis.call('PEXPIRE', k, n(tonumber(top[2]) - now))
        return result
        """;
}
