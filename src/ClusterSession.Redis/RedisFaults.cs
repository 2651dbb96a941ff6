using System.Globalization;
using StackExchange.Redis;
using StackExchange.Redis.Availability;

namespace ClusterSession.Redis;

/// <summary>
/// Classifies what StackExchange.Redis reports once, for the store's retry loop and for the message of
/// <see cref="SessionStoreUnavailableException"/>: was the store unreachable, was the command certainly not
/// applied (so a retry is a first attempt, not a repeat), does the answer mean the topology changed.
/// </summary>
internal static class RedisFaults
{
    /// <summary>Whether <paramref name="ex"/> means the store is unavailable (rather than a bug or bad data).</summary>
    public static bool IsUnavailable(Exception ex) => ex switch
    {
        TimeoutException or RedisConnectionException => true,
        RedisServerException server => IsTransientServerError(server),
        _ => false,
    };

    /// <summary>
    /// Whether the command is known not to have run: it never left the client, or the server refused it
    /// before running anything (READONLY, LOADING, MASTERDOWN, NOREPLICAS, CLUSTERDOWN, TRYAGAIN, a redirect).
    /// Timeouts and connections lost after sending stay ambiguous and are never retried.
    /// </summary>
    public static bool NotApplied(Exception ex) => ex switch
    {
        RedisServerException server => IsTransientServerError(server),
        RedisConnectionException connection => connection.FailureType is ConnectionFailureType.UnableToResolvePhysicalConnection
            || IsUnfollowedRedirect(connection)
            || new FaultContext(connection).NotApplied,
        _ => false,
    };

    /// <summary>Whether the answer says the connection's picture of the topology is stale: the primary moved, a slot moved, no primary is known.</summary>
    public static bool TopologyChanged(Exception ex) => ex switch
    {
        RedisServerException server => server.Kind is RedisErrorKind.ReadOnly or RedisErrorKind.MasterDown or RedisErrorKind.Loading
            or RedisErrorKind.NoReplicas or RedisErrorKind.Moved or RedisErrorKind.Ask or RedisErrorKind.UnknownRedirectTarget
            or RedisErrorKind.ClusterDown
            || HasPrefix(server, "READONLY") || HasPrefix(server, "MASTERDOWN") || HasPrefix(server, "LOADING") || HasPrefix(server, "NOREPLICAS"),
        RedisConnectionException connection => connection.FailureType is ConnectionFailureType.UnableToResolvePhysicalConnection or ConnectionFailureType.UnableToConnect,
        _ => false,
    };

    /// <summary>
    /// The message of the <see cref="SessionStoreUnavailableException"/> for <paramref name="ex"/>: what happened
    /// (timed out, refused, redirected, unreachable), after how long and how many attempts, and what to check.
    /// Never contains a key (a key holds a session id).
    /// </summary>
    public static string Describe(Exception ex, TimeSpan timeout, TimeSpan elapsed, int attempts)
    {
        var after = string.Create(CultureInfo.InvariantCulture, $"after {elapsed.TotalMilliseconds:0} ms and {attempts} attempt(s), within the {timeout.TotalMilliseconds:0} ms OperationTimeout");
        return ex switch
        {
            RedisServerException server when server.Kind is RedisErrorKind.Moved or RedisErrorKind.Ask or RedisErrorKind.UnknownRedirectTarget =>
                $"Redis Cluster redirected the command ({FirstWord(server.Message)}) to a node the connection could not use {after}. The store refreshed its view of the cluster; if this persists, check that every cluster node is reachable from this host.",
            RedisConnectionException connection when IsUnfollowedRedirect(connection) =>
                $"Redis Cluster redirected the command (ASK/MOVED) to a node the connection had not reached yet {after}. The store refreshed its view of the cluster and retried; if this persists, check that every cluster node is reachable from this host.",
            RedisServerException server =>
                $"Redis refused the command ({FirstWord(server.Message)}: {Explain(server)}) {after}. The store reconfigures its connection and retries by itself; if this persists, check the Redis primary and its replicas.",
            RedisConnectionException connection when connection.FailureType is ConnectionFailureType.UnableToResolvePhysicalConnection =>
                $"No Redis primary was reachable {after} ({connection.FailureType}). Check that Redis is running and reachable (with Sentinel: that the sentinels agree on a primary); the request must not continue without its session.",
            RedisConnectionException connection =>
                $"The connection to Redis failed {after} ({connection.FailureType}); the command may or may not have been applied. Check that Redis is running and reachable; the request must not continue without its session.",
            _ =>
                $"The Redis session store did not answer within {timeout.TotalMilliseconds:0} ms ({ex.GetType().Name}, {attempts} attempt(s)); the command may or may not have been applied. Check that Redis is running and reachable; the request must not continue without its session.",
        };
    }

    /// <summary>
    /// StackExchange.Redis follows a MOVED to a node it has not met, but fails an ASK to one (and a redirect to a node
    /// it cannot reach) with this connection error. The node that redirected did not run the command.
    /// </summary>
    private static bool IsUnfollowedRedirect(RedisConnectionException connection)
        => connection.FailureType == ConnectionFailureType.UnableToConnect
            && connection.Message.StartsWith("Endpoint ", StringComparison.Ordinal)
            && connection.Message.Contains(" serving hashslot ", StringComparison.Ordinal);

    private static bool IsTransientServerError(RedisServerException server)
        => server.Kind is RedisErrorKind.Loading or RedisErrorKind.ClusterDown or RedisErrorKind.TryAgain or RedisErrorKind.MasterDown
            or RedisErrorKind.ReadOnly or RedisErrorKind.NoReplicas or RedisErrorKind.Moved or RedisErrorKind.Ask or RedisErrorKind.UnknownRedirectTarget
            || HasPrefix(server, "LOADING") || HasPrefix(server, "CLUSTERDOWN") || HasPrefix(server, "TRYAGAIN")
            || HasPrefix(server, "MASTERDOWN") || HasPrefix(server, "READONLY") || HasPrefix(server, "NOREPLICAS");

    private static string Explain(RedisServerException server) => FirstWord(server.Message) switch
    {
        "READONLY" => "the node is a replica, the primary moved",
        "MASTERDOWN" => "the replica lost its primary",
        "LOADING" => "the node is still loading its data",
        "NOREPLICAS" => "the primary has fewer replicas than its min-replicas-to-write",
        "CLUSTERDOWN" => "the hash slot is not served",
        "TRYAGAIN" => "the hash slot is being migrated",
        _ => "a transient server state",
    };

    private static bool HasPrefix(RedisServerException server, string prefix) => server.Message.StartsWith(prefix, StringComparison.Ordinal);

    private static string FirstWord(string message)
    {
        var end = message.IndexOf(' ', StringComparison.Ordinal);
        return end < 0 ? message : message[..end];
    }
}
