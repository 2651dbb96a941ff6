using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>
/// Sends a write and <c>WAIT replicas timeout</c> back to back on the connection of the key's primary, so the
/// write is acknowledged only once <see cref="RedisSessionStoreOptions.WaitForReplicas"/> replicas have it, at the
/// cost of the replication round trip and no extra client round trip. WAIT cannot run inside a script or a
/// MULTI (it would not block there), hence the pipeline.
/// </summary>
/// <remarks>
/// Scripts go out as <c>EVALSHA</c> (<c>EVAL</c> after a <c>NOSCRIPT</c>) explicitly rather than through
/// <c>ScriptEvaluateAsync</c>, whose automatic re-send after <c>NOSCRIPT</c> (for example on a freshly promoted
/// replica) would run the script after the WAIT and so acknowledge a write no replica had seen. Both commands go to
/// one <see cref="IServer"/> with <see cref="CommandFlags.NoRedirect"/>, so a cluster redirect fails the pair (the
/// store retries it after refreshing the topology) instead of sending the write and the WAIT to different nodes.
/// </remarks>
internal sealed class RedisReplicaWait(int replicas, TimeSpan timeout)
{
    private readonly ConcurrentDictionary<string, string> _hashes = new(StringComparer.Ordinal);
    private readonly object[] _waitArgs = [replicas, (long)timeout.TotalMilliseconds];

    /// <summary>Runs <paramref name="script"/> on <paramref name="keys"/> (one slot) and waits for the replicas.</summary>
    /// <exception cref="ReplicasNotAcknowledgedException">Fewer replicas than required acknowledged in time.</exception>
    public async Task<RedisResult> EvaluateAsync(IDatabase db, string script, RedisKey[] keys, RedisValue[] args)
    {
        var server = PrimaryOf(db, keys[0]);
        var evalArgs = new object[2 + keys.Length + args.Length];
        evalArgs[0] = _hashes.GetOrAdd(script, Sha1);
        evalArgs[1] = keys.Length;
        for (var i = 0; i < keys.Length; i++)
        {
            evalArgs[2 + i] = keys[i];
        }

        for (var i = 0; i < args.Length; i++)
        {
            evalArgs[2 + keys.Length + i] = args[i];
        }

        try
        {
            return await RunAsync(db, server, "EVALSHA", evalArgs).ConfigureAwait(false);
        }
        catch (RedisServerException ex) when (ex.Kind == RedisErrorKind.NoScript || ex.Message.StartsWith("NOSCRIPT", StringComparison.Ordinal))
        {
            // The server does not know the script (restarted, or a replica just promoted): send the text, which caches it.
            evalArgs[0] = script;
            return await RunAsync(db, server, "EVAL", evalArgs).ConfigureAwait(false);
        }
    }

    /// <summary>Runs a plain command on <paramref name="key"/>'s primary and waits for the replicas.</summary>
    public Task<RedisResult> ExecuteAsync(IDatabase db, RedisKey key, string command, params object[] args)
        => RunAsync(db, PrimaryOf(db, key), command, args);

    private static IServer PrimaryOf(IDatabase db, RedisKey key)
    {
        try
        {
            return db.Multiplexer.GetServer(key, null, CommandFlags.DemandMaster);
        }
        catch (InvalidOperationException ex)
        {
            // No primary known right now (mid-failover): nothing was sent, so the store may retry after a topology refresh.
            throw new RedisConnectionException(ConnectionFailureType.UnableToResolvePhysicalConnection, CommandFlags.DemandMaster, "No Redis primary is known for the key's hash slot.", ex, CommandStatus.WaitingToBeSent);
        }
    }

    private async Task<RedisResult> RunAsync(IDatabase db, IServer server, string command, object[] args)
    {
        var write = server.ExecuteAsync(db.Database, command, args, CommandFlags.NoRedirect);
        var wait = server.ExecuteAsync(db.Database, "WAIT", _waitArgs, CommandFlags.NoRedirect);
        RedisResult result;
        try
        {
            result = await write.ConfigureAwait(false);
        }
        catch
        {
            SessionStoreOperations.ObserveAbandoned(wait);
            throw;
        }

        var acknowledged = (long)await wait.ConfigureAwait(false);
        if (acknowledged < replicas)
        {
            throw new ReplicasNotAcknowledgedException(acknowledged, replicas, timeout);
        }

        return result;
    }

    // Redis names a cached script by the SHA-1 of its text; this is an identifier, not a security measure.
#pragma warning disable CA5350
    private static string Sha1(string script) => Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(script)));
#pragma warning restore CA5350
}
