using Microsoft.Extensions.Logging;

namespace ClusterSession.Postgres;

/// <summary>Event ids of the PostgreSQL store, one place so that they never collide.</summary>
internal static class PostgresEventIds
{
    public const int CleanupDeleted = 2001;
    public const int CleanupFailed = 2002;
    public const int SchemaCreated = 2003;
    public const int LoggingModeMismatch = 2005;
    public const int NearCacheListening = 2006;
    public const int NearCacheListenerFailed = 2007;
    public const int EventListenerFailed = 2010;
    public const int EventHandlerFailed = 2011;
}

internal static partial class PostgresLog
{
    [LoggerMessage(PostgresEventIds.CleanupDeleted, LogLevel.Debug, "Session cleanup deleted {Count} expired sessions from {Table}.")]
    public static partial void CleanupDeleted(ILogger logger, long count, string table);

    [LoggerMessage(PostgresEventIds.CleanupFailed, LogLevel.Warning, "Session cleanup of {Table} failed; it runs again at the next interval.")]
    public static partial void CleanupFailed(ILogger logger, Exception exception, string table);

    [LoggerMessage(PostgresEventIds.SchemaCreated, LogLevel.Information, "Session tables {Table} are in place (created where missing, unlogged: {Unlogged}).")]
    public static partial void SchemaCreated(ILogger logger, string table, bool unlogged);

    [LoggerMessage(PostgresEventIds.LoggingModeMismatch, LogLevel.Warning, "Session table {Table} exists with unlogged = {Existing} while the option Unlogged is {Configured}; it was left as it is. Convert it with ALTER TABLE ... SET LOGGED/UNLOGGED (see docs/postgres-data-model.md) or change the option.")]
    public static partial void LoggingModeMismatch(ILogger logger, string table, bool existing, bool configured);

    [LoggerMessage(PostgresEventIds.NearCacheListening, LogLevel.Debug, "Near cache listening on channel {Channel}; it serves copies again once a heartbeat comes back.")]
    public static partial void NearCacheListening(ILogger logger, string channel);

    [LoggerMessage(PostgresEventIds.NearCacheListenerFailed, LogLevel.Warning, "Near cache listener on channel {Channel} failed; the cache is off and emptied until it listens again (next attempt in {RetryDelay}).")]
    public static partial void NearCacheListenerFailed(ILogger logger, Exception exception, string channel, TimeSpan retryDelay);

    [LoggerMessage(PostgresEventIds.EventListenerFailed, LogLevel.Warning, "Session lifecycle event listener on channel {Channel} failed; events sent until it listens again are lost to this node (next attempt in {RetryDelay}).")]
    public static partial void EventListenerFailed(ILogger logger, Exception exception, string channel, TimeSpan retryDelay);

    [LoggerMessage(PostgresEventIds.EventHandlerFailed, LogLevel.Error, "A session lifecycle event handler threw")]
    public static partial void EventHandlerFailed(ILogger logger, Exception exception);
}
