using System.Globalization;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>
/// The store's health beyond "it answers": with <see cref="RedisSessionStoreOptions.WaitForReplicas"/> set, saves
/// fail while the primary has fewer connected replicas than that, so the store reports itself degraded then.
/// </summary>
public sealed partial class RedisSessionStore : ISessionStoreHealthReporter
{
    // Through a script: StackExchange.Redis sends INFO only in admin mode, which the store does not need.
    private const string ReplicationInfoScript = "return redis.call('INFO', 'replication')";
    private const string ConnectedReplicasField = "connected_slaves:";

    /// <inheritdoc />
    /// <remarks>
    /// Without <see cref="RedisSessionStoreOptions.WaitForReplicas"/>: healthy, with no round trip. With it: one
    /// read-only round trip (<c>INFO replication</c> from a one-line script, on the primary; on a Redis Cluster, on
    /// one primary), degraded when the primary reports fewer connected replicas than writes wait for. Healthy when the
    /// server refuses the command (an ACL without <c>+info</c>, a managed service) or does not report the field.
    /// </remarks>
    public ValueTask<SessionStoreHealth> GetHealthAsync(CancellationToken cancellationToken = default)
        => _options.WaitForReplicas == 0
            ? new(SessionStoreHealth.Healthy())
            : RunAsync("health check", this, static (store, token) => store.ReplicaHealthAsync(token), cancellationToken);

    private async Task<SessionStoreHealth> ReplicaHealthAsync(CancellationToken token)
    {
        string info;
        try
        {
            info = (string?)await CommandAsync(
                static (db, script) => db.ScriptEvaluateAsync(script, flags: Primary), ReplicationInfoScript, token).ConfigureAwait(false) ?? "";
        }
        catch (RedisServerException ex) when (!RedisFailures.NotApplied(ex))
        {
            // Refused (NOPERM, scripting or INFO disabled): the store cannot tell, and says nothing.
            return SessionStoreHealth.Healthy();
        }

        var required = _options.WaitForReplicas;
        var connected = ConnectedReplicas(info);
        if (connected is not { } count)
        {
            return SessionStoreHealth.Healthy();
        }

        return count < required
            ? SessionStoreHealth.Degraded(string.Create(CultureInfo.InvariantCulture,
                $"{count} of {required} replica(s) connected to the Redis primary; saves wait for {required} (RedisSessionStoreOptions.WaitForReplicas) and fail until enough replicas are back. Check the replicas (INFO replication), or lower WaitForReplicas."))
            : SessionStoreHealth.Healthy(string.Create(CultureInfo.InvariantCulture, $"{count} replica(s) connected; saves wait for {required}."));
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
