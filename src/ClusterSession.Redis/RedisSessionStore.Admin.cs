using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>The operator's view (<see cref="ISessionStoreAdministration"/>): count cost and a measured sample.</summary>
public sealed partial class RedisSessionStore : ISessionStoreAdministration
{
    /// <inheritdoc />
    /// <remarks>The sum of <c>DBSIZE</c> over the connected masters: <see cref="CountAsync"/> scans every key of them.</remarks>
    public ValueTask<long> EstimateCountCostAsync(CancellationToken cancellationToken = default)
        => RunAsync("count estimate", this, static (store, token) => store.EstimateCountCostCoreAsync(token), cancellationToken);

    /// <inheritdoc />
    /// <remarks>
    /// Scans session keys master by master until <paramref name="maxSessions"/> are found, then sends one pipelined
    /// <c>MEMORY USAGE</c> and <c>PTTL</c> per key. Keys without a time to live (mid-removal) are left out.
    /// </remarks>
    public ValueTask<SessionStoreSample> SampleAsync(int maxSessions, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSessions);
        return RunAsync("sample", (Store: this, Max: maxSessions), static (s, token) => s.Store.SampleCoreAsync(s.Max, token), cancellationToken);
    }

    private Task<long> EstimateCountCostCoreAsync(CancellationToken token)
        => CommandAsync(
            static async (db, _) =>
            {
                long keys = 0;
                var masters = 0;
                foreach (var server in db.Multiplexer.GetServers())
                {
                    if (!server.IsReplica && server.IsConnected)
                    {
                        masters++;
                        keys += await server.DatabaseSizeAsync(db.Database, Primary).ConfigureAwait(false);
                    }
                }

                // With no master connected there is nothing to count: an outage, not an empty store.
                return masters > 0 ? keys : throw NoMaster();
            },
            0,
            token);

    private Task<SessionStoreSample> SampleCoreAsync(int maxSessions, CancellationToken token)
        => CommandAsync(
            static async (db, state) =>
            {
                var keys = new List<RedisKey>(state.Max);
                var masters = 0;
                foreach (var server in db.Multiplexer.GetServers())
                {
                    if (server.IsReplica || !server.IsConnected)
                    {
                        continue;
                    }

                    masters++;

                    foreach (var pattern in state.Patterns)
                    {
                        await foreach (var key in server.KeysAsync(db.Database, pattern, pageSize: Math.Min(1000, state.Max)).WithCancellation(state.Token).ConfigureAwait(false))
                        {
                            keys.Add(key);
                            if (keys.Count == state.Max)
                            {
                                break;
                            }
                        }

                        if (keys.Count == state.Max)
                        {
                            break;
                        }
                    }

                    if (keys.Count == state.Max)
                    {
                        break;
                    }
                }

                if (masters == 0)
                {
                    throw NoMaster();
                }

                var memory = keys.Select(k => db.ExecuteAsync("MEMORY", ["USAGE", k], Primary)).ToArray();
                var ttl = keys.Select(k => db.KeyTimeToLiveAsync(k, Primary)).ToArray();
                await Task.WhenAll(Task.WhenAll(memory), Task.WhenAll(ttl)).ConfigureAwait(false);
                var bytes = new List<long>(keys.Count);
                var times = new List<TimeSpan>(keys.Count);
                for (var i = 0; i < keys.Count; i++)
                {
                    if (ttl[i].Result is { } left && !memory[i].Result.IsNull)
                    {
                        bytes.Add((long)memory[i].Result);
                        times.Add(left);
                    }
                }

                return new SessionStoreSample(bytes, times, null);
            },
            (Patterns: SessionPatterns(), Max: maxSessions, Token: token),
            token);

    private static RedisConnectionException NoMaster()
        => new(ConnectionFailureType.UnableToConnect, CommandFlags.None, "No Redis master is connected.");
}
