using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>
/// The Lua scripts of the store, one per operation, each touching exactly one key (so one hash slot:
/// Redis Cluster safe). docs/redis-data-model.md describes every field and argument. Numbers go out
/// through string.format('%d') so Lua 5.1 (Redis) and Lua 5.4 (Garnet) write the same digits.
/// </summary>
/// <remarks>
/// One argument convention: ARGV[1] is the clock; a script that changes a session takes the announce arguments next
/// (ARGV[2..4], <see cref="RedisAnnounce"/>); then its own arguments, named in its first line and built by one C#
/// method with the same names (<c>SaveArgs</c>, <c>CompareAndSetArgs</c>, ...); a variable list comes last, after its
/// count. The script texts are constants: no value is written into them.
/// </remarks>
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

    // The session's metadata is one field, '#' = "created,access,idle,lifetime,version[,principal]": created is Unix ms on
    // the store's clock, access (the last refresh) and lifetime (absolute expiry) are ms after created, idle is ms. A
    // session is live when '#' is there, '#m' (moving to a new id) is not, and the store's clock is before
    // min(access + idle, absolute expiry). meta() reads both fields in one HMGET and asks for the clock only when
    // there is a session to judge; a session found dead is deleted on the spot.
    // KEYS[1] is the session's key in the layout this node writes; while the store's layout is being upgraded, KEYS[2]
    // is its key in the other layout (same slot: docs/redis-data-model.md, "Layouts"). When only KEYS[2] exists, a
    // previous-layout KEYS[2] (ending with '}') is renamed to KEYS[1] (the move, atomic with the operation), and a
    // current-layout KEYS[2] (a node still writing the previous layout meets a moved session) is used where it is.
    private const string Prelude = Clock + """
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

        """;

    // announce(version) tells every node's near cache that the session changed to that version; announce() that it
    // ended. Its arguments are the same three in every script that changes a session, right after the clock
    // (RedisAnnounce): ARGV[2] the near cache's channel ('' when the cache is off: announce does nothing), ARGV[3] the
    // writing store instance's nonce (which the other nodes acknowledge an end to), ARGV[4] the byte (1-based) where the
    // id starts in a previous-layout key. It PUBLISHes, per key the script got, the session's handle (the last 22
    // characters of a current-layout key) or, for a previous-layout key, the SHA-1 (hex) of the session id as the
    // previous release announced it (never the id itself, a credential), followed by ':' and the version for a change,
    // or by '|' and the nonce for an end. Each changing script calls it once, just before its successful return.
    private const string Announce = """
        local function announce(v)
          if ARGV[2] == '' then return end
          for _, name in ipairs(KEYS) do
            local key
            if string.byte(name, -1) == 125 then key = redis.sha1hex(string.sub(name, tonumber(ARGV[4]), -2)) else key = string.sub(name, -22) end
            if v then key = key .. ':' .. string.format('%d', v) else key = key .. '|' .. ARGV[3] end
            redis.call('PUBLISH', ARGV[2], key)
          end
        end

        """;

    /// <summary>
    /// The half of a load that runs in Lua. KEYS[1] session; ARGV clock, touch-fraction-per-mille. Sent in one round
    /// trip together with an HGETALL of the key (after it): judges the session on the store's clock (deleting it when
    /// dead) and refreshes last access and TTL when the touch is due, so that the HGETALL sees the result. Returns 1
    /// live, 0 absent, 2 live under KEYS[2] (a previous-layout node meeting a moved session: read that key). The hash itself never passes through Lua (converting it both ways cost more than the rest).
    /// </summary>
    public const string Load = Prelude + """
        local s = meta(redis.call('HMGET', k, '#', '#m'))
        if not s then return 0 end
        if now - s.access >= s.idle * tonumber(ARGV[2]) / 1000 then
          redis.call('HSET', k, '#', pack(s, now, s.idle, s.version, s.rest))
          redis.call('PEXPIRE', k, string.format('%d', math.min(now + s.idle, s.abs) - now))
        end
        if k ~= KEYS[1] then return 2 end
        return 1
        """;

    /// <summary>
    /// KEYS[1] session; ARGV clock, then 'n', idle ms, lifetime ms, version, principal ('' or ',' + principal) for a
    /// new session (the script dates it on the store's clock), or 'c', '#' value for a copy under a new id (it keeps
    /// its dates); then attribute field/value pairs. Returns 1 created, 0 taken (a live or moving session).
    /// 'm' is 'n' by a current node that still writes the previous layout: 'created' is rounded down to a whole second
    /// (last access and absolute expiry stay exact), the tell by which the upgrade sees sessions that a node of the
    /// previous release created (docs/redis-data-model.md, "Upgrading from layout 2").
    /// </summary>
    public const string Create = Prelude + """
        if redis.call('EXISTS', k) == 1 then
          local m = redis.call('HMGET', k, '#', '#m')
          if m[2] or meta(m) then return 0 end
          redis.call('DEL', k)
        end
        now = now or clock()
        local m, first
        if ARGV[2] == 'n' or ARGV[2] == 'm' then
          local c, a, l = now, 0, tonumber(ARGV[4])
          if ARGV[2] == 'm' then
            a = now % 1000
            c = now - a
            l = l + a
          end
          m = string.format('%d,%d,%s,%d,%s%s', c, a, ARGV[3], l, ARGV[5], ARGV[6])
          first = 7
        else
          m = ARGV[3]
          first = 4
        end
        local c, a, i, l = string.match(m, '^(%d+),(%d+),(%d+),(%d+),')
        redis.call('HSET', k, '#', m, unpack(ARGV, first))
        redis.call('PEXPIRE', k, string.format('%d', math.max(1, tonumber(c) + math.min(tonumber(a) + tonumber(i), tonumber(l)) - now)))
        return 1
        """;

    /// <summary>
    /// KEYS[1] session; ARGV as <see cref="SaveArgs"/> builds them: clock, announce (3), max attributes, new idle ms ('' keeps
    /// it), principal change ('' keeps it, 'set' or 'clear'), principal, count of set attributes, then the set
    /// field/value pairs and the removed fields. The attributes and the new metadata (version + 1, last access now) go in
    /// one HSET, then PEXPIRE: a save always refreshes (SessionStoreOptions.TouchIntervalFraction). The limit is counted
    /// field by field only when the session could reach it (its attributes plus the set ones exceed it).
    /// Returns {1, version, absolute-ms, had-principal, old-principal}, {0} gone, {-1, count} over the limit.
    /// </summary>
    public const string Save = Prelude + Announce + """
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
        """;

    /// <summary>The arguments of <see cref="Save"/>.</summary>
    /// <param name="clock">The clock argument (RedisSessionStore.Clock).</param>
    /// <param name="announce">The near cache's announce arguments.</param>
    /// <param name="maxAttributes">The store's attribute limit.</param>
    /// <param name="idle">A new idle timeout, or null to keep the session's.</param>
    /// <param name="principalChange">Null keeps the principal; otherwise the new one, whose null clears it.</param>
    /// <param name="set">Attributes to set.</param>
    /// <param name="removed">Attributes to remove.</param>
    public static RedisValue[] SaveArgs(
        RedisValue clock,
        in RedisAnnounce announce,
        int maxAttributes,
        TimeSpan? idle,
        (string? Principal, bool Changed) principalChange,
        IReadOnlyDictionary<string, byte[]> set,
        IReadOnlyCollection<string> removed)
    {
        var args = new RedisValue[9 + (2 * set.Count) + removed.Count];
        args[0] = clock;
        announce.WriteTo(args);
        args[4] = maxAttributes;
        args[5] = idle is { } i ? (long)i.TotalMilliseconds : RedisValue.EmptyString;
        args[6] = !principalChange.Changed ? RedisValue.EmptyString : principalChange.Principal is null ? "clear" : "set";
        args[7] = principalChange.Principal ?? RedisValue.EmptyString;
        args[8] = set.Count;
        var n = 9;
        foreach (var (name, value) in set)
        {
            args[n++] = RedisKeys.AttributeField(name);
            args[n++] = value;
        }

        foreach (var name in removed)
        {
            args[n++] = RedisKeys.AttributeField(name);
        }

        return args;
    }

    /// <summary>
    /// KEYS[1] session; ARGV as <see cref="CompareAndSetArgs"/> builds them: clock, announce (3), field, has-expected,
    /// expected, has-replacement, replacement, max attributes.
    /// Returns {1, version} set, {0} gone, {2, 1, current} or {2, 0} mismatch, {-1, count} over the limit.
    /// </summary>
    public const string CompareAndSet = Prelude + Announce + """
        local field, has_expected, expected, has_replacement, replacement, max_attributes = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], tonumber(ARGV[10])
        local m = redis.call('HMGET', k, '#', '#m', field)
        local s = meta(m)
        if not s then return {0} end
        local cur = m[3]
        if has_expected == '1' then
          if cur ~= expected then
            if cur then return {2, 1, cur} else return {2, 0} end
          end
        elseif cur then
          return {2, 1, cur}
        end
        local v = s.version + 1
        local packed = pack(s, now, s.idle, v, s.rest)
        if has_replacement == '1' then
          if not cur then
            local count = redis.call('HLEN', k)
            if count > max_attributes then return {-1, count} end
          end
          redis.call('HSET', k, field, replacement, '#', packed)
        else
          if cur then redis.call('HDEL', k, field) end
          redis.call('HSET', k, '#', packed)
        end
        redis.call('PEXPIRE', k, string.format('%d', math.min(now + s.idle, s.abs) - now))
        announce(v)
        return {1, v}
        """;

    /// <summary>The arguments of <see cref="CompareAndSet"/>.</summary>
    /// <param name="clock">The clock argument.</param>
    /// <param name="announce">The near cache's announce arguments.</param>
    /// <param name="name">The attribute.</param>
    /// <param name="expected">The value expected now, or null for "absent".</param>
    /// <param name="replacement">The new value, or null to remove the attribute.</param>
    /// <param name="maxAttributes">The store's attribute limit.</param>
    public static RedisValue[] CompareAndSetArgs(RedisValue clock, in RedisAnnounce announce, string name, ReadOnlyMemory<byte>? expected, byte[]? replacement, int maxAttributes)
    {
        var args = new RedisValue[10];
        args[0] = clock;
        announce.WriteTo(args);
        args[4] = RedisKeys.AttributeField(name);
        args[5] = expected is null ? "0" : "1";
        args[6] = expected is { } e ? e : RedisValue.EmptyString;
        args[7] = replacement is null ? "0" : "1";
        args[8] = replacement ?? RedisValue.EmptyString;
        args[9] = maxAttributes;
        return args;
    }

    /// <summary>
    /// KEYS[1] session; ARGV as <see cref="DeleteArgs"/> builds them: clock, announce (3), has-principal, principal.
    /// Deletes the key (with a principal: only when the session is live and bound to it, for a revocation by handle).
    /// Returns {was-live, had-principal, principal}.
    /// </summary>
    public const string Delete = Prelude + Announce + """
        local has_principal, principal = ARGV[5], ARGV[6]
        local s = meta(redis.call('HMGET', k, '#', '#m'))
        if has_principal == '1' and (not s or s.rest ~= ',' .. principal) then return {0, 0, ''} end
        redis.call('DEL', k)
        announce()
        local bound = s and s.rest ~= ''
        return {s and 1 or 0, bound and 1 or 0, bound and string.sub(s.rest, 2) or ''}
        """;

    /// <summary>The arguments of <see cref="Delete"/>.</summary>
    /// <param name="clock">The clock argument.</param>
    /// <param name="announce">The near cache's announce arguments.</param>
    /// <param name="expectedPrincipal">Delete only when the session is bound to this principal; null for any session.</param>
    public static RedisValue[] DeleteArgs(RedisValue clock, in RedisAnnounce announce, string? expectedPrincipal)
    {
        var args = new RedisValue[6];
        args[0] = clock;
        announce.WriteTo(args);
        args[4] = expectedPrincipal is null ? "0" : "1";
        args[5] = expectedPrincipal ?? RedisValue.EmptyString;
        return args;
    }

    /// <summary>
    /// First step of an id change. KEYS[1] old session; ARGV as <see cref="BeginMoveArgs"/> builds them: clock, announce (3).
    /// Marks a live session as moving (saves and loads then treat it as gone) and returns its hash; nil when absent.
    /// </summary>
    public const string BeginMove = Prelude + Announce + """
        if not meta(redis.call('HMGET', k, '#', '#m')) then return false end
        local h = redis.call('HGETALL', k)
        redis.call('HSET', k, '#m', '1')
        announce()
        return h
        """;

    /// <summary>The arguments of <see cref="BeginMove"/>.</summary>
    /// <param name="clock">The clock argument.</param>
    /// <param name="announce">The near cache's announce arguments.</param>
    public static RedisValue[] BeginMoveArgs(RedisValue clock, in RedisAnnounce announce)
    {
        var args = new RedisValue[4];
        args[0] = clock;
        announce.WriteTo(args);
        return args;
    }

    /// <summary>Undoes <see cref="BeginMove"/> when the new id is taken. KEYS the old session's keys (one slot).</summary>
    public const string AbortMove = """
        for _, key in ipairs(KEYS) do redis.call('HDEL', key, '#m') end
        return 1
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
    /// KEYS[1] session (KEYS[2] its key in the other layout while the layout is upgraded, as in every session script);
    /// ARGV clock. Reads the hash without touching it: nil when absent or expired by the store's clock, else the flat
    /// field/value array (a hash being moved keeps its '#m' field).
    /// </summary>
    public const string Peek = Clock + """
        local k = KEYS[1]
        if KEYS[2] and redis.call('EXISTS', k) == 0 and redis.call('EXISTS', KEYS[2]) == 1 then
          if string.sub(KEYS[2], -1) == '}' then redis.call('RENAME', KEYS[2], k) else k = KEYS[2] end
        end
        local h = redis.call('HGETALL', k)
        if #h == 0 then return false end
        for i = 1, #h, 2 do
          if h[i] == '#' then
            local c, a, i2, l = string.match(h[i + 1], '^(%d+),(%d+),(%d+),(%d+),')
            if c and clock() >= tonumber(c) + math.min(tonumber(a) + tonumber(i2), tonumber(l)) then return false end
            break
          end
        end
        return h
        """;
}

/// <summary>
/// The announce arguments of every script that changes a session (ARGV[2..4], after the clock): the near cache's
/// channel (empty when the cache is off), the writing store instance's nonce, and the byte where the id starts in a
/// previous-layout key (1-based).
/// </summary>
internal readonly record struct RedisAnnounce(RedisValue Channel, RedisValue Writer, long IdStart)
{
    /// <summary>Writes the three arguments at ARGV[2..4] (indexes 1 to 3).</summary>
    public void WriteTo(RedisValue[] args)
    {
        args[1] = Channel;
        args[2] = Writer;
        args[3] = IdStart;
    }
}

/// <summary>The scripts of the layout upgrade (RedisSessionStore.Layout.cs, RedisSessionStore.Upgrade.cs).</summary>
internal static class RedisLayoutScripts
{
    /// <summary>
    /// KEYS[1] current-layout session key, KEYS[2] its previous-layout key (same slot). Moves the session: RENAME keeps
    /// every field and the TTL, atomically, so a save running at the same moment lands before or after, never lost.
    /// When both exist the current one wins and the previous one is deleted. Returns 1 moved, 0 nothing to move.
    /// </summary>
    public const string Move = """
        if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
        if redis.call('EXISTS', KEYS[1]) == 1 then
          redis.call('DEL', KEYS[2])
          return 0
        end
        redis.call('RENAME', KEYS[2], KEYS[1])
        return 1
        """;

    /// <summary>
    /// KEYS[1] node registry; ARGV node id, layout the node acts on ('' to leave). Writes "layout,now" (the store's
    /// clock, Redis TIME) under the node id and keeps the earliest registration under '#since'. Returns now.
    /// </summary>
    public const string Register = """
        local t = redis.call('TIME')
        local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
        if ARGV[2] == '' then
          redis.call('HDEL', KEYS[1], ARGV[1])
        else
          redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ',' .. now)
          if redis.call('HEXISTS', KEYS[1], '#since') == 0 then redis.call('HSET', KEYS[1], '#since', now) end
        end
        return now
        """;

    /// <summary>
    /// KEYS[1] layout marker (a hash: field 'v', so that the documented ACL rules need no string commands); ARGV ''
    /// (read), 'nx' and a value (set it unless set), or 'set' and a value. Returns the marker after the call.
    /// </summary>
    public const string Marker = """
        if ARGV[1] == 'set' or (ARGV[1] == 'nx' and redis.call('HEXISTS', KEYS[1], 'v') == 0) then
          redis.call('HSET', KEYS[1], 'v', ARGV[2])
        end
        return redis.call('HMGET', KEYS[1], 'v')[1]
        """;

    /// <summary>
    /// KEYS two scratch keys of one slot. Checks that this Redis user may run what the upgrade runs (RENAME inside a
    /// script) before anything changes; leaves nothing behind.
    /// </summary>
    public const string Probe = """
        redis.call('HSET', KEYS[1], 'p', '1')
        redis.call('PEXPIRE', KEYS[1], 60000)
        redis.call('RENAME', KEYS[1], KEYS[2])
        redis.call('DEL', KEYS[2])
        return 1
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
