using System.Globalization;
using System.Text.RegularExpressions;
using StackExchange.Redis;
using StackExchange.Redis.Availability;

namespace ClusterSession.Redis;

/// <summary>
/// What a Redis failure means for the session store, decided once: the one mapping from StackExchange.Redis
/// exceptions to <see cref="SessionStoreUnavailableException"/> (with messages that never quote a key: keys
/// contain session ids), and the two questions the store's retry asks of a failure: was the command certainly
/// not run (so sending it again is a first attempt, not a repeat), and does the answer mean the topology changed.
/// </summary>
internal static partial class RedisFailures
{
    private const string Store = "Redis";
    private const string TimeoutSetting = "RedisSessionStoreOptions.OperationTimeout";

    /// <summary>The store's operations: <see cref="RedisSessionStoreOptions.OperationTimeout"/> each, failures through <see cref="Classifier"/>.</summary>
    /// <param name="timeout">The operation timeout.</param>
    /// <param name="keyPrefixToScrub">The key prefix to remove from driver messages (a multiplexer the application configured); null: none.</param>
    public static SessionStoreOperations Operations(TimeSpan timeout, string? keyPrefixToScrub)
        => new(Store, timeout, TimeoutSetting, new Classifier(keyPrefixToScrub));

    /// <summary>
    /// The typed exception for <paramref name="exception"/>, or null when it is not a Redis failure (a bug:
    /// let it through). <paramref name="elapsed"/>: how long the operation ran, retries included.
    /// </summary>
    public static SessionStoreUnavailableException? ToUnavailable(Exception exception, string operation, TimeSpan elapsed, string? keyPrefixToScrub)
    {
        if (exception is not (RedisException or TimeoutException))
        {
            return null;
        }

        var inner = keyPrefixToScrub is null ? exception : Scrubbed(exception, keyPrefixToScrub);
        var after = string.Create(CultureInfo.InvariantCulture, $"after {elapsed.TotalMilliseconds:0} ms");
        return exception switch
        {
            ReplicasNotAcknowledgedException replicas => SessionStoreUnavailableException.Failed(
                Store,
                operation,
                string.Create(CultureInfo.InvariantCulture, $"only {replicas.Acknowledged} of the {replicas.Required} replica(s) required by WaitForReplicas acknowledged the write within {replicas.Timeout.TotalMilliseconds:0} ms"),
                "The write reached the primary but is not reported as saved: it may be lost if the primary fails now. Check that the replicas are running and connected to the primary (INFO replication), or lower RedisSessionStoreOptions.WaitForReplicas.",
                inner),
            TimeoutException => SessionStoreUnavailableException.Failed(
                Store, operation, "StackExchange.Redis timed the command out", "Check that the server answers; the multiplexer's AsyncTimeout passed before the store's OperationTimeout.", inner),
            RedisServerException server when IsRedirect(server) => SessionStoreUnavailableException.Failed(
                Store, operation, $"redirected by Redis Cluster ({ErrorCode(server.Message)}) to a node the connection could not use, {after} of retries", "The store refreshed its view of the cluster; if this persists, check that every cluster node is reachable from this host.", inner),
            RedisConnectionException connection when IsUnfollowedRedirect(connection) => SessionStoreUnavailableException.Failed(
                Store, operation, $"redirected by Redis Cluster to a node the connection had not reached yet, {after} of retries", "The store refreshed its view of the cluster; if this persists, check that every cluster node is reachable from this host.", inner),
            RedisConnectionException connection when connection.FailureType == ConnectionFailureType.UnableToResolvePhysicalConnection => SessionStoreUnavailableException.Failed(
                Store, operation, $"no Redis primary was reachable, {after}", "Check that Redis is running and reachable (with Sentinel: that the sentinels agree on a primary).", inner),
            RedisConnectionException => SessionStoreUnavailableException.Refused(Store, operation, inner),
            RedisServerException server when IsTransient(server) => SessionStoreUnavailableException.Failed(
                Store, operation, $"{ErrorCode(server.Message)}: {Explain(server)}, {after}", "The store reconfigures its connection and retries by itself; if this persists, check the Redis primary and its replicas.", inner),
            RedisServerException server => SessionStoreUnavailableException.Failed(
                Store, operation, ErrorCode(server.Message), "Check the server: it may be loading, failing over, read-only or out of memory.", inner),
            _ => SessionStoreUnavailableException.Failed(
                Store, operation, exception.GetType().Name, "Check that Redis is running and reachable.", inner),
        };
    }

    /// <summary>Redis's part of <see cref="SessionStoreOperations"/>: <see cref="ToUnavailable"/>.</summary>
    internal sealed class Classifier(string? keyPrefixToScrub) : IStoreFailureClassifier
    {
        public Exception? Classify(Exception exception, string operation, TimeSpan elapsed) => ToUnavailable(exception, operation, elapsed, keyPrefixToScrub);
    }

    /// <summary>
    /// Whether the command is known not to have run: it never left the client, or the server refused it before
    /// running anything (READONLY, LOADING, MASTERDOWN, NOREPLICAS, CLUSTERDOWN, TRYAGAIN, a redirect). Timeouts and
    /// connections lost after sending stay ambiguous and are never retried.
    /// </summary>
    public static bool NotApplied(Exception exception) => exception switch
    {
        RedisServerException server => IsTransient(server),
        RedisConnectionException connection => connection.FailureType is ConnectionFailureType.UnableToResolvePhysicalConnection
            || IsUnfollowedRedirect(connection)
            || new FaultContext(connection).NotApplied,
        _ => false,
    };

    /// <summary>Whether the answer says the connection's picture of the topology is stale: the primary moved, a slot moved, no primary is known.</summary>
    public static bool TopologyChanged(Exception exception) => exception switch
    {
        RedisServerException server => server.Kind is RedisErrorKind.ReadOnly or RedisErrorKind.MasterDown or RedisErrorKind.Loading
            or RedisErrorKind.NoReplicas or RedisErrorKind.ClusterDown
            || IsRedirect(server)
            || HasCode(server, "READONLY") || HasCode(server, "MASTERDOWN") || HasCode(server, "LOADING") || HasCode(server, "NOREPLICAS"),
        RedisConnectionException connection => connection.FailureType is ConnectionFailureType.UnableToResolvePhysicalConnection or ConnectionFailureType.UnableToConnect,
        _ => false,
    };

    /// <summary>
    /// A copy of a StackExchange.Redis exception whose message has keys, hash tags and anything shaped like a
    /// session id removed: for a multiplexer the application configured, which may include keys in messages.
    /// </summary>
    internal static RedisException Scrubbed(Exception exception, string keyPrefix)
    {
        var message = exception.Message;
        if (keyPrefix.Length > 0)
        {
            message = message.Replace(keyPrefix, "\u0000", StringComparison.Ordinal);
            message = KeyAfterMarker().Replace(message, "<key>");
        }

        message = HashTag().Replace(message, "{…}");
        message = IdShaped().Replace(message, "<id>");
        return new RedisException($"{exception.GetType().Name} (message scrubbed of keys): {message}");
    }

    private static bool IsRedirect(RedisServerException server)
        => server.Kind is RedisErrorKind.Moved or RedisErrorKind.Ask or RedisErrorKind.UnknownRedirectTarget;

    /// <summary>
    /// StackExchange.Redis follows a MOVED to a node it has not met, but fails an ASK to one (and a redirect to a node
    /// it cannot reach) with this connection error: "Endpoint … serving hashslot … is not reachable at this point of
    /// time", or "Endpoint is not reachable …" with exception detail off (as on connections the store creates). It
    /// names no key, and the node that redirected did not run the command.
    /// </summary>
    private static bool IsUnfollowedRedirect(RedisConnectionException connection)
        => connection.FailureType == ConnectionFailureType.UnableToConnect
            && connection.Message.StartsWith("Endpoint ", StringComparison.Ordinal)
            && connection.Message.Contains(" is not reachable at this point of time", StringComparison.Ordinal);

    /// <summary>An error reply that means "not now, not here": the server ran nothing, and another try may succeed.</summary>
    private static bool IsTransient(RedisServerException server)
        => server.Kind is RedisErrorKind.Loading or RedisErrorKind.ClusterDown or RedisErrorKind.TryAgain or RedisErrorKind.MasterDown
            or RedisErrorKind.ReadOnly or RedisErrorKind.NoReplicas
            || IsRedirect(server)
            || HasCode(server, "LOADING") || HasCode(server, "CLUSTERDOWN") || HasCode(server, "TRYAGAIN")
            || HasCode(server, "MASTERDOWN") || HasCode(server, "READONLY") || HasCode(server, "NOREPLICAS");

    private static string Explain(RedisServerException server) => ErrorCode(server.Message) switch
    {
        "READONLY" => "the node is a replica, the primary moved",
        "MASTERDOWN" => "the replica lost its primary",
        "LOADING" => "the node is still loading its data",
        "NOREPLICAS" => "the primary has fewer replicas than its min-replicas-to-write",
        "CLUSTERDOWN" => "the hash slot is not served",
        "TRYAGAIN" => "the hash slot is being migrated",
        _ => "a transient server state",
    };

    private static bool HasCode(RedisServerException server, string code) => server.Message.StartsWith(code, StringComparison.Ordinal);

    /// <summary>The error code Redis puts first in an error reply (LOADING, READONLY, ...), never the rest of the text.</summary>
    private static string ErrorCode(string message)
    {
        var end = message.IndexOf(' ', StringComparison.Ordinal);
        var code = end < 0 ? message : message[..end];
        return code.Length is > 0 and <= 32 && code.All(char.IsAsciiLetterUpper) ? code : "error reply";
    }

    [GeneratedRegex("\u0000[^\\s,]*")]
    private static partial Regex KeyAfterMarker();

    [GeneratedRegex("\\{[^}]*\\}")]
    private static partial Regex HashTag();

    [GeneratedRegex("[A-Za-z0-9_-]{32,}")]
    private static partial Regex IdShaped();
}

/// <summary>
/// Fewer replicas than <see cref="RedisSessionStoreOptions.WaitForReplicas"/> acknowledged a write within
/// <see cref="RedisSessionStoreOptions.ReplicaWaitTimeout"/>. Internal: <see cref="RedisFailures"/> maps it to
/// <see cref="SessionStoreUnavailableException"/> like every other Redis failure.
/// </summary>
internal sealed class ReplicasNotAcknowledgedException(long acknowledged, int required, TimeSpan timeout)
    : RedisException(string.Create(CultureInfo.InvariantCulture, $"WAIT: {acknowledged} of {required} replica(s) acknowledged within {timeout.TotalMilliseconds:0} ms."))
{
    public long Acknowledged { get; } = acknowledged;

    public int Required { get; } = required;

    public TimeSpan Timeout { get; } = timeout;
}
