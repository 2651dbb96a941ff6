using System.Text;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>Key and field names; docs/redis-data-model.md is the reference for each.</summary>
internal sealed class RedisKeys
{
    /// <summary>The metadata field: "created,access,idle,lifetime,version[,principal]" (docs/redis-data-model.md).</summary>
    public const string Meta = "#";
    public const string Moving = "#m";
    public const byte AttributeMarker = (byte)'@';

    /// <summary>The fields CountAsync reads per session.</summary>
    public static readonly RedisValue[] CountFields = [Meta, Moving];

    private readonly string _sessionPrefix;
    private readonly string _principalPrefix;

    public RedisKeys(string prefix)
    {
        _sessionPrefix = prefix + "s:{";
        _principalPrefix = prefix + "p:";
        SessionPattern = EscapeGlob(prefix) + "s:\\{*";
    }

    /// <summary>The SCAN pattern matching every session key of this store.</summary>
    public string SessionPattern { get; }

    /// <summary>The session hash. The id is the hash tag, so every key of one session would share its slot.</summary>
    public RedisKey Session(string id) => _sessionPrefix + id + "}";

    /// <summary>The principal's index sorted set.</summary>
    public RedisKey Principal(string principal) => _principalPrefix + principal;

    /// <summary>The id inside a session key, or null when the key is not one of ours.</summary>
    public string? IdFromSessionKey(string key)
    {
        if (!key.StartsWith(_sessionPrefix, StringComparison.Ordinal) || !key.EndsWith('}'))
        {
            return null;
        }

        var id = key[_sessionPrefix.Length..^1];
        return SessionId.IsWellFormed(id) ? id : null;
    }

    public static RedisValue AttributeField(string name)
    {
        var field = new byte[1 + Encoding.UTF8.GetByteCount(name)];
        field[0] = AttributeMarker;
        Encoding.UTF8.GetBytes(name, field.AsSpan(1));
        return field;
    }

    private static string EscapeGlob(string value)
    {
        var builder = new StringBuilder(value.Length);
        foreach (var c in value)
        {
            if (c is '*' or '?' or '[' or ']' or '\\')
            {
                builder.Append('\\');
            }

            builder.Append(c);
        }

        return builder.ToString();
    }
}
