using System.Globalization;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>
/// The store's health beyond "it answers": with <see cref="RedisSessionStoreOptions.WaitForReplicas"/> set, saves
/// fail while the primary has fewer connected replicas than that, or while a connected replica does not acknowledge
/// writes (still in its first sync, paused, too far behind), so the store reports itself degraded then.
/// </summary>
public sealed partial class RedisSessionStore : ISessionStoreHealthReporter
{
    // Through a script: StackExchange.Redis sends INFO only in admin mode, which the store does not need.
    private const string ReplicationInfoScript = "return redis.call('INFO', 'replication')";
    private const string ConnectedReplicasField = "connected_slaves:";

    // A hash and a script, so the probe needs no command beyond those the store's ACL already grants (docs/operations.md).
    private const string ProbeWriteScript = "redis.call('HSET', KEYS[1], 'v', '1') return redis.call('PEXPIRE', KEYS[1], 60000)";

    /// <inheritdoc />
    /// <remarks>
    /// Without <see cref="RedisSessionStoreOptions.WaitForReplicas"/>: healthy, with no round trip. With it: two
    /// round trips: <c>INFO replication</c> from a one-line script, on the primary (on a Redis Cluster, on one primary),
    /// degraded when the primary reports fewer connected replicas than writes wait for; then a write as saves make it
    /// (a script that writes the probe hash <c>Phealth</c>, 60 s TTL, followed by <c>WAIT</c>), degraded when it does not get
    /// its acknowledgements within <see cref="RedisSessionStoreOptions.ReplicaWaitTimeout"/>. The INFO step is skipped
    /// when the server refuses the command (an ACL without <c>+info</c>, a managed service) or does not report the field.
    /// </remarks>
    public ValueTask<SessionStoreHealth> GetHealthAsync(CancellationToken cancellationToken = default)
        => _options.WaitForReplicas == 0
            ? new(SessionStoreHealth.Healthy())
            : RunAsync("health check", this, static (store, token) => store.ReplicaHealthAsync(token), cancellationToken);

    private async Task<SessionStoreHealth> ReplicaHealthAsync(CancellationToken token)
    {
        var required = _options.WaitForReplicas;
        int? connected;
        try
        {
            var info = (string?)await CommandAsync(
                static (db, script) => db.ScriptEvaluateAsync(script, flags: Primary), ReplicationInfoScript, token).ConfigureAwait(false) ?? "";
            connected = ConnectedReplicas(info);
        }
        catch (RedisServerException ex) when (!RedisFailures.NotApplied(ex))
        {
            // Refused (NOPERM, scripting or INFO disabled): INFO cannot tell; the write below still does.
            connected = null;
        }

        if (connected is { } count && count < required)
        {
            return SessionStoreHealth.Degraded(string.Create(CultureInfo.InvariantCulture,
                $"{count} of {required} replica(s) connected to the Redis primary; saves wait for {required} (RedisSessionStoreOptions.WaitForReplicas) and fail until enough replicas are back. Check the replicas (INFO replication), or lower WaitForReplicas."));
        }

        // Connected is not in sync: a replica in its first sync (state=wait_bgsave), paused or far behind counts as
        // connected, yet WAIT gets no acknowledgement from it. Only a write says whether saves succeed now.
        try
        {
            await WriteAsync(ProbeWriteScript, _keys.HealthProbe, [], token).ConfigureAwait(false);
        }
        catch (ReplicasNotAcknowledgedException ex)
        {
            return SessionStoreHealth.Degraded(string.Create(CultureInfo.InvariantCulture,
                $"A write got {ex.Acknowledged} of the {required} replica acknowledgement(s) it waits for (RedisSessionStoreOptions.WaitForReplicas) within {ex.Timeout.TotalMilliseconds:0} ms; saves fail until the replicas are in sync. Check the replicas (INFO replication: a replica still in its first sync, or paused, does not acknowledge), or lower WaitForReplicas."));
        }
        catch (RedisServerException ex) when (!RedisFailures.NotApplied(ex))
        {
            // Refused (NOPERM on the probe key, scripting disabled): the store cannot tell more than INFO did.
            return SessionStoreHealth.Healthy();
        }

        return SessionStoreHealth.Healthy(connected is { } n
            ? string.Create(CultureInfo.InvariantCulture, $"{n} replica(s) connected; a write got the {required} acknowledgement(s) saves wait for.")
            : string.Create(CultureInfo.InvariantCulture, $"A write got the {required} replica acknowledgement(s) saves wait for."));
    }

    private static int? ConnectedReplicas(string info)
    {
        foreach (var line in info.Split('\n'))
        {
            var trimmed = line.Trim();
            if (trimmed.StartsWith(ConnectedReplicasField, StringComparison.Ordinal)
                && int.TryParse(trimmed.AsSpan(ConnectedReplicasField.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var count))
            {
                return count;
            }
        }

        return null;
    }
}
