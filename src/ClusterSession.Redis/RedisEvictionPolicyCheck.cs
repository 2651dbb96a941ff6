using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>
/// Warns once, when the store first connects, if a primary evicts keys under memory pressure with a policy that can
/// drop live sessions: any <c>maxmemory-policy</c> other than <c>noeviction</c> (writes fail cleanly when memory is
/// full) or <c>volatile-*</c> (only keys with a TTL, which every session has, but so do caches: size maxmemory for both).
/// Reads <c>INFO memory</c> (from a one-line script, so no admin mode is needed); says nothing when the server refuses it (an ACL without +info,
/// a managed service) or does not report the field (Garnet).
/// </summary>
internal static partial class RedisEvictionPolicyCheck
{
    private const string InfoScript = "return redis.call('INFO', 'memory')";

    public static async Task WarnIfUnfitAsync(IConnectionMultiplexer multiplexer, ILogger logger)
    {
        string? policy;
        try
        {
            // Through a script: StackExchange.Redis sends INFO only in admin mode, which the store does not need.
            // One primary answers (on a cluster, any one: nodes are configured alike).
            var info = (string?)await multiplexer.GetDatabase().ScriptEvaluateAsync(InfoScript, flags: CommandFlags.DemandMaster).ConfigureAwait(false) ?? "";
            policy = info.Split('\n')
                .Select(line => line.Trim())
                .FirstOrDefault(line => line.StartsWith("maxmemory_policy:", StringComparison.Ordinal))?["maxmemory_policy:".Length..];
        }
#pragma warning disable CA1031 // Advice only: a refused or failed INFO must never affect the store.
        catch (Exception)
#pragma warning restore CA1031
        {
            return;
        }

        if (policy is not null && !IsFitForSessions(policy))
        {
            LogUnfitPolicy(logger, policy);
        }
    }

    internal static bool IsFitForSessions(string policy)
        => policy == "noeviction" || policy.StartsWith("volatile-", StringComparison.Ordinal);

    [LoggerMessage(EventId = RedisLogEvents.EvictionPolicyUnfit, Level = LogLevel.Warning,
        Message = "Redis has maxmemory-policy {Policy}: when memory runs out it evicts live sessions (users are signed out at random). Set maxmemory-policy to noeviction (writes then fail cleanly) or a volatile-* policy, and size maxmemory for the sessions.")]
    private static partial void LogUnfitPolicy(ILogger logger, string policy);
}
