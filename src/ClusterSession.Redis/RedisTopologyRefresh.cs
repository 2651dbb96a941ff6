using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>
/// Makes the connection follow the primary: when Redis answers that the connection's picture of the topology is
/// stale (READONLY from a demoted primary, MASTERDOWN, LOADING, NOREPLICAS, a redirect to a node it does not know,
/// no primary known at all), it asks the multiplexer to re-discover every endpoint's role (<c>ConfigureAsync</c>,
/// the same probe as the first connect). One refresh at a time and at most one per <see cref="MinimumInterval"/>,
/// so a burst of failing requests costs one refresh, and the multiplexer recovers without a restart even when it
/// missed Sentinel's <c>+switch-master</c> message (for example while its primary was paused).
/// </summary>
internal sealed partial class RedisTopologyRefresh(ILogger logger)
{
    /// <summary>The shortest time between two refreshes.</summary>
    public static readonly TimeSpan MinimumInterval = TimeSpan.FromMilliseconds(250);

    private long _lastStarted = long.MinValue;
    private int _running;

    /// <summary>Starts a refresh in the background unless one is running or one started less than <see cref="MinimumInterval"/> ago.</summary>
    public void Request(IConnectionMultiplexer multiplexer, Exception cause)
    {
        var now = Environment.TickCount64;
        if (now - Volatile.Read(ref _lastStarted) < (long)MinimumInterval.TotalMilliseconds || Interlocked.CompareExchange(ref _running, 1, 0) != 0)
        {
            return;
        }

        Volatile.Write(ref _lastStarted, now);
        if (logger.IsEnabled(LogLevel.Information))
        {
            var kind = cause is RedisServerException server ? server.Kind.ToString() : cause is RedisConnectionException connection ? connection.FailureType.ToString() : "";
            var type = cause.GetType().Name;
            LogRefreshing(logger, type, kind);
        }

        _ = Task.Run(async () =>
        {
            try
            {
                await multiplexer.ConfigureAsync().ConfigureAwait(false);
            }
#pragma warning disable CA1031 // A refresh that fails is retried by the next failing command; it must never surface here.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                LogRefreshFailed(logger, ex.GetType().Name);
            }
            finally
            {
                Volatile.Write(ref _running, 0);
            }
        });
    }

    [LoggerMessage(EventId = RedisLogEvents.TopologyRefresh, Level = LogLevel.Information, Message = "Redis answered {ErrorType} {Kind}: re-discovering the primary and the cluster topology")]
    private static partial void LogRefreshing(ILogger logger, string errorType, string kind);

    [LoggerMessage(EventId = RedisLogEvents.TopologyRefreshFailed, Level = LogLevel.Warning, Message = "Re-discovering the Redis topology failed ({ErrorType}); the next failing command tries again")]
    private static partial void LogRefreshFailed(ILogger logger, string errorType);
}
