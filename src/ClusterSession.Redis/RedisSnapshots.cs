using System.Buffers.Text;
using System.Text;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>Reads session hashes (as the scripts and HGETALL return them) into snapshots.</summary>
internal static class RedisSnapshots
{
    /// <summary>A snapshot from a script's flat field/value array; the script guarantees the metadata.</summary>
    public static SessionSnapshot Read(string id, RedisResult[] flat)
        => TryRead(id, null, Entries(flat))
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

    /// <summary>
    /// A snapshot of a hash, or null when it lacks metadata (absent, or written by an older layout) or is mid-move. Known
    /// by <paramref name="id"/> when the caller has it, else by <paramref name="handle"/> (found through an index).
    /// </summary>
    public static SessionSnapshot? TryRead(string? id, string? handle, HashEntry[] hash)
    {
        Metadata? meta = null;
        var attributes = new Dictionary<string, byte[]>(hash.Length, StringComparer.Ordinal);
        foreach (var entry in hash)
        {
            var field = (byte[])entry.Name!;
            if (field.Length > 0 && field[0] == RedisKeys.AttributeMarker)
            {
                attributes[Encoding.UTF8.GetString(field.AsSpan(1))] = (byte[])entry.Value!;
            }
            else if (field.AsSpan().SequenceEqual("#"u8))
            {
                meta = Metadata.Parse(entry.Value);
            }
            else if (field.AsSpan().SequenceEqual("#m"u8))
            {
                return null;
            }
        }

        if (meta is not { } m)
        {
            return null;
        }

        return new SessionSnapshot(
            id,
            handle ?? SessionHandle.FromId(id!),
            DateTimeOffset.FromUnixTimeMilliseconds(m.Created),
            DateTimeOffset.FromUnixTimeMilliseconds(m.Access),
            TimeSpan.FromMilliseconds(m.Idle),
            DateTimeOffset.FromUnixTimeMilliseconds(m.Absolute),
            m.Principal,
            m.Version,
            attributes);
    }

    /// <summary>Whether the fields CountAsync reads (<see cref="RedisKeys.CountFields"/>) describe a live session.</summary>
    public static bool IsLive(RedisValue[] fields, long nowMs)
        => fields[1].IsNull && Metadata.Parse(fields[0]) is { } m && nowMs < m.ExpiresAt;

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

    /// <summary>The '#' field: "created,access,idle,lifetime,version[,principal]", access and lifetime in ms after created.</summary>
    internal readonly record struct Metadata(long Created, long Access, long Idle, long Absolute, long Version, string? Principal)
    {
        /// <summary>When the session ends: its idle timeout after the last access, or its absolute expiry if sooner.</summary>
        public long ExpiresAt => Math.Min(Access + Idle, Absolute);

        /// <summary>The parsed field, or null when it is absent or not in this layout.</summary>
        public static Metadata? Parse(RedisValue value)
        {
            if (value.IsNull)
            {
                return null;
            }

            ReadOnlySpan<byte> text = (byte[])value!;
            Span<long> numbers = stackalloc long[5];
            for (var i = 0; i < numbers.Length; i++)
            {
                if (!Utf8Parser.TryParse(text, out long number, out var used) || number < 0 || used == 0)
                {
                    return null;
                }

                numbers[i] = number;
                text = text[used..];
                if (i < numbers.Length - 1)
                {
                    if (text.IsEmpty || text[0] != (byte)',')
                    {
                        return null;
                    }

                    text = text[1..];
                }
            }

            string? principal = null;
            if (!text.IsEmpty)
            {
                if (text[0] != (byte)',')
                {
                    return null;
                }

                principal = Encoding.UTF8.GetString(text[1..]);
            }

            return numbers[2] <= 0
                ? null
                : new Metadata(numbers[0], numbers[0] + numbers[1], numbers[2], numbers[0] + numbers[3], numbers[4], principal);
        }
    }
}
