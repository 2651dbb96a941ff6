using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>Options of <see cref="RedisSessionStore"/>. Set either <see cref="Configuration"/> or <see cref="ConnectionMultiplexerFactory"/>.</summary>
public sealed class RedisSessionStoreOptions
{
    /// <summary>
    /// A StackExchange.Redis configuration string (for example <c>"127.0.0.1:6379"</c>, or several
    /// endpoints of a Redis Cluster). The store creates one multiplexer from it, owns it and disposes it.
    /// Default: null.
    /// </summary>
    public string? Configuration { get; set; }

    /// <summary>
    /// Supplies a multiplexer the application already has (one per application is the rule).
    /// The store uses it but does not dispose it. Takes precedence over <see cref="Configuration"/>. Default: null.
    /// </summary>
    public Func<Task<IConnectionMultiplexer>>? ConnectionMultiplexerFactory { get; set; }

    /// <summary>
    /// Prepended to every key, so several applications (or tests) can share one Redis.
    /// Must not contain '{' or '}' (the store puts the session id in a hash tag). Default: <c>"cs:"</c>.
    /// </summary>
    public string KeyPrefix { get; set; } = "cs:";

    /// <summary>
    /// A load refreshes a session's last access time and TTL only when the last refresh is older than
    /// this fraction of the session's idle timeout, so a busy read-only session costs one read command
    /// per request. 0 refreshes on every load. Between 0 and 0.5. Default: 0.1.
    /// </summary>
    public double TouchIntervalFraction { get; set; } = 0.1;

    /// <summary>
    /// How long one store operation may take, connection problems included, before it fails with
    /// <see cref="SessionStoreUnavailableException"/>. Default: 5 seconds.
    /// </summary>
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Limits on attribute names, sizes and counts, checked before every write. Default: <see cref="SessionLimits.Default"/>.</summary>
    public SessionLimits Limits { get; set; } = SessionLimits.Default;

    /// <summary>
    /// The Redis key of the list that keeps ASP.NET Core Data Protection's key ring, shared by every server
    /// (see <see cref="IKeyRingStore"/>). Servers of one application must use the same key; different
    /// applications on one Redis need different keys (a different <see cref="KeyPrefix"/> gives them).
    /// Default: null, which means <see cref="KeyPrefix"/> followed by <c>dataprotection-keys</c>.
    /// </summary>
    public string? KeyRingKey { get; set; }
}

/// <summary>Validates <see cref="RedisSessionStoreOptions"/> with messages that name the option and the fix.</summary>
internal sealed class RedisSessionStoreOptionsValidator : IValidateOptions<RedisSessionStoreOptions>
{
    public ValidateOptionsResult Validate(string? name, RedisSessionStoreOptions options)
    {
        var failures = Check(options);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    internal static void ThrowIfInvalid(RedisSessionStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = Check(options);
        if (failures.Count > 0)
        {
            throw new OptionsValidationException(nameof(RedisSessionStoreOptions), typeof(RedisSessionStoreOptions), failures);
        }
    }

    private static List<string> Check(RedisSessionStoreOptions options)
    {
        var failures = new List<string>();
        if (options.ConnectionMultiplexerFactory is null && string.IsNullOrWhiteSpace(options.Configuration))
        {
            failures.Add("RedisSessionStoreOptions.Configuration is empty: set it to a Redis configuration string such as \"127.0.0.1:6379\", or set ConnectionMultiplexerFactory to share an existing multiplexer.");
        }

        if (options.KeyPrefix is null || options.KeyPrefix.Contains('{', StringComparison.Ordinal) || options.KeyPrefix.Contains('}', StringComparison.Ordinal))
        {
            failures.Add("RedisSessionStoreOptions.KeyPrefix must be non-null and must not contain '{' or '}' (the store uses a hash tag for the session id): use a prefix such as \"myapp:\".");
        }

        if (double.IsNaN(options.TouchIntervalFraction) || options.TouchIntervalFraction < 0 || options.TouchIntervalFraction > 0.5)
        {
            failures.Add($"RedisSessionStoreOptions.TouchIntervalFraction is {options.TouchIntervalFraction}: use a value between 0 (refresh on every load) and 0.5; the default is 0.1.");
        }

        if (options.OperationTimeout <= TimeSpan.Zero || options.OperationTimeout > TimeSpan.FromMinutes(5))
        {
            failures.Add($"RedisSessionStoreOptions.OperationTimeout is {options.OperationTimeout}: use a positive time of at most 5 minutes; the default is 5 seconds.");
        }

        if (options.KeyRingKey is not null && string.IsNullOrWhiteSpace(options.KeyRingKey))
        {
            failures.Add("RedisSessionStoreOptions.KeyRingKey is blank: leave it null (the default, KeyPrefix + \"dataprotection-keys\") or set a key name such as \"myapp:dataprotection-keys\".");
        }

        if (options.Limits is null)
        {
            failures.Add("RedisSessionStoreOptions.Limits is null: leave it at SessionLimits.Default or set a SessionLimits instance.");
        }

        return failures;
    }
}
