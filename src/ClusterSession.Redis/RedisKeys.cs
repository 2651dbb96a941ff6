using System.Text;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>
/// Key and field names; docs/redis-data-model.md is the reference for each. Layout 3 (the current one) keys a session
/// by its handle and a principal's index by the principal's digest; layout 2 (the previous release, v0.2.0-preview.1)
/// keyed them by the session id and the principal name, and is still read and written until the upgrade finishes.
/// </summary>
internal sealed class RedisKeys
{
    /// <summary>The metadata field: "created,access,idle,lifetime,version[,principal]" (docs/redis-data-model.md).</summary>
    public const string Meta = "#";
    public const string Moving = "#m";
    public const byte AttributeMarker = (byte)'@';

    /// <summary>The fields CountAsync reads per session.</summary>
    public static readonly RedisValue[] CountFields = [Meta, Moving];

    private readonly string _sessionPrefix;
    private readonly string _previousSessionPrefix;
    private readonly string _indexPrefix;
    private readonly string _previousIndexPrefix;

    public RedisKeys(string prefix)
    {
        _sessionPrefix = prefix + "s3:{";
        _previousSessionPrefix = prefix + "s:{";
        _indexPrefix = prefix + "u:";
        _previousIndexPrefix = prefix + "p:";
        var glob = EscapeGlob(prefix);
        SessionPattern = glob + "s3:\\{*";
        PreviousSessionPattern = glob + "s:\\{*";
        PreviousIndexPattern = glob + "p:*";
        AnySessionPattern = glob + "s*";
        Layout = prefix + "layout";
        Nodes = prefix + "nodes";
        HealthProbe = prefix + "health";
    }

    /// <summary>The SCAN pattern matching every current-layout session key of this store.</summary>
    public string SessionPattern { get; }

    /// <summary>The SCAN pattern matching every previous-layout session key (<c>P s:{id}</c>).</summary>
    public string PreviousSessionPattern { get; }

    /// <summary>A pattern matching the session keys of both layouts (and nothing else this store writes).</summary>
    public string AnySessionPattern { get; }

    /// <summary>The SCAN pattern matching every previous-layout principal index (<c>P p:name</c>).</summary>
    public string PreviousIndexPattern { get; }

    /// <summary>The layout marker: "2", "migrating" or "3".</summary>
    public RedisKey Layout { get; }

    /// <summary>The registry of running store instances: field node id, value "layout,unix ms".</summary>
    public RedisKey Nodes { get; }

    /// <summary>The health check's probe: a hash written, with a short TTL, to learn whether writes get their replica acknowledgements.</summary>
    public RedisKey HealthProbe { get; }

    /// <summary>The current-layout session hash: <c>P s3:{tag}handle</c>, in the slot of the previous layout's key.</summary>
    public RedisKey Session(in RedisSessionRef session) => _sessionPrefix + session.Tag + "}" + session.Handle;

    /// <summary>The previous-layout session hash: <c>P s:{id}</c>.</summary>
    public RedisKey PreviousSession(string id) => _previousSessionPrefix + id + "}";

    /// <summary>The principal's current-layout index: <c>P u:digest</c>.</summary>
    public RedisKey Index(string principal) => _indexPrefix + SessionHandle.FromPrincipal(principal);

    /// <summary>The principal's previous-layout index: <c>P p:name</c>.</summary>
    public RedisKey PreviousIndex(string principal) => _previousIndexPrefix + principal;

    /// <summary>The principal named by a previous-layout index key, or null when the key is not one.</summary>
    public string? PrincipalFromPreviousIndex(string key)
        => key.StartsWith(_previousIndexPrefix, StringComparison.Ordinal) ? key[_previousIndexPrefix.Length..] : null;

    /// <summary>The id inside a previous-layout session key, or null when the key is not one of ours.</summary>
    public string? IdFromPreviousSessionKey(string key)
    {
        if (!key.StartsWith(_previousSessionPrefix, StringComparison.Ordinal) || !key.EndsWith('}'))
        {
            return null;
        }

        var id = key[_previousSessionPrefix.Length..^1];
        return SessionId.IsWellFormed(id) ? id : null;
    }

    /// <summary>The handle of a session key of either layout (computed from the id for a previous-layout key), or null.</summary>
    public string? HandleFromSessionKey(string key)
    {
        if (key.StartsWith(_sessionPrefix, StringComparison.Ordinal))
        {
            var handle = key.Length > SessionHandle.Length ? key[^SessionHandle.Length..] : null;
            return SessionHandle.IsWellFormed(handle) && key[^(SessionHandle.Length + 1)] == '}' ? handle : null;
        }

        return IdFromPreviousSessionKey(key) is { } id ? SessionHandle.FromId(id) : null;
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

/// <summary>
/// A session as the store addresses it: its handle and slot tag (the current layout's key and index member), and its
/// id when the caller has one (a session found through a current-layout index has none).
/// </summary>
internal readonly record struct RedisSessionRef(string? Id, string Tag, string Handle)
{
    /// <summary>The index member of the current layout: the tag followed by the handle, from which the key is rebuilt.</summary>
    public string Member => Tag + Handle;

    public static RedisSessionRef FromId(string id) => new(id, RedisSlotTags.TagOf(id), SessionHandle.FromId(id));

    /// <summary>The session a current-layout index member names, or null when the member is malformed.</summary>
    public static RedisSessionRef? FromMember(string? member)
        => member is { Length: > SessionHandle.Length and <= SessionHandle.Length + 4 } && SessionHandle.IsWellFormed(member[^SessionHandle.Length..])
            ? new RedisSessionRef(null, member[..^SessionHandle.Length], member[^SessionHandle.Length..])
            : null;
}
