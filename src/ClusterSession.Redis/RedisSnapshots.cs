using System.Text;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>Reads session hashes (as the scripts and HGETALL return them) into snapshots.</summary>
internal static class RedisSnapshots
{
    /// <summary>A snapshot from a script's flat field/value array; the script guarantees the metadata.</summary>
    public static SessionSnapshot Read(string id, RedisResult[] flat)
        => TryRead(id, Entries(flat))
            ?? throw new InvalidOperationException("The session script returned a hash without its metadata; the Redis data was changed by something other than this store.");

    /// <summary>The entries of a script's flat field/value array.</summary>
    public static HashEntry[] Entries(RedisResult[] flat)
    {
        var entries = new HashEntry[flat.Length / 2];
        for (var i = 0; i < entries.Length; i++)
        {
            entries[i] = new HashEntry((RedisValue)flat[2 * i], (RedisValue)flat[(2 * i) + 1]);
        }

        return entries;
    }

    /// <summary>A snapshot of a hash, or null when it lacks metadata or is mid-move.</summary>
    public static SessionSnapshot? TryRead(string id, HashEntry[] hash)
    {
        long? created = null, access = null, idle = null, absolute = null;
        long version = 0;
        string? principal = null;
        var moving = false;
        var attributes = new Dictionary<string, byte[]>(hash.Length, StringComparer.Ordinal);
        foreach (var entry in hash)
        {
            var field = (byte[])entry.Name!;
            if (field.Length > 0 && field[0] == RedisKeys.AttributeMarker)
            {
                attributes[Encoding.UTF8.GetString(field.AsSpan(1))] = (byte[])entry.Value!;
                continue;
            }

            var name = Encoding.ASCII.GetString(field);
            switch (name)
            {
                case RedisKeys.Created: created = (long)entry.Value; break;
                case RedisKeys.Access: access = (long)entry.Value; break;
                case RedisKeys.Idle: idle = (long)entry.Value; break;
                case RedisKeys.Absolute: absolute = (long)entry.Value; break;
                case RedisKeys.Version: version = (long)entry.Value; break;
                case RedisKeys.PrincipalField: principal = entry.Value; break;
                case RedisKeys.Moving: moving = true; break;
            }
        }

        if (created is null || access is null || idle is not > 0 || absolute is null || moving)
        {
            return null;
        }

        return new SessionSnapshot(
            id,
            DateTimeOffset.FromUnixTimeMilliseconds(created.Value),
            DateTimeOffset.FromUnixTimeMilliseconds(access.Value),
            TimeSpan.FromMilliseconds(idle.Value),
            DateTimeOffset.FromUnixTimeMilliseconds(absolute.Value),
            principal,
            version,
            attributes);
    }

    /// <summary>Whether the fields CountAsync reads (<see cref="RedisKeys.CountFields"/>) describe a live session.</summary>
    public static bool IsLive(RedisValue[] fields, long nowMs)
    {
        // fields: last access, idle, absolute, moving.
        if (!fields[3].IsNull || !fields[0].TryParse(out long access) || !fields[1].TryParse(out long idle) || !fields[2].TryParse(out long absolute))
        {
            return false;
        }

        return nowMs < Math.Min(access + idle, absolute);
    }

    /// <summary>Whether a hash is marked as moving to a new id.</summary>
    public static bool IsMoving(HashEntry[] hash)
    {
        foreach (var entry in hash)
        {
            if (entry.Name == RedisKeys.Moving)
            {
                return true;
            }
        }

        return false;
    }
}
