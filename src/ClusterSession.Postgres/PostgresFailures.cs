using System.Net.Sockets;
using Npgsql;

namespace ClusterSession.Postgres;

/// <summary>
/// What a PostgreSQL failure means for the session store: the one mapping from Npgsql exceptions to the
/// store's exceptions. Messages are built here from SQLSTATE codes, never copied from the server (whose
/// details may quote a row).
/// </summary>
internal sealed class PostgresFailures(string server, string sessionsTable, string attributesTable, TimeSpan timeout) : IStoreFailureClassifier
{
    private const string Store = "PostgreSQL";
    private const string TimeoutSetting = "PostgresSessionStoreOptions.CommandTimeout";

    /// <summary>The store's operations: the command timeout each, failures through <see cref="Classify"/>.</summary>
    public SessionStoreOperations Operations() => new(Store, timeout, TimeoutSetting, this);

    /// <summary>
    /// The exception to throw for <paramref name="exception"/>, or null when it is not a store failure (ours,
    /// or a bug: let it through). Server errors are classified by SQLSTATE class rather than by
    /// <see cref="NpgsqlException.IsTransient"/>, which answers differently here: it leaves out 57P01/57P02 (the server
    /// shutting down or crashed: an outage, as a stopped server is) and counts serialization and lock failures
    /// (40001, 55P03: the server answered) as transient.
    /// </summary>
    public Exception? Classify(Exception exception, string operation, TimeSpan elapsed) => exception switch
    {
        ClusterSessionException or InvalidOperationException => null,
        PostgresException { SqlState: PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName } missing => new InvalidOperationException(
            $"The session tables {sessionsTable} / {attributesTable} do not exist on PostgreSQL at {server}: " +
            "call PostgresSessionStore.CreateSchemaAsync(), set PostgresSessionStoreOptions.CreateSchemaOnStartup, or run schema.sql.",
            missing),
        PostgresException { SqlState: PostgresErrorCodes.QueryCanceled } canceled => SessionStoreUnavailableException.TimedOut(Store, operation, timeout, TimeoutSetting, canceled),
        PostgresException postgres when IsConnectionState(postgres.SqlState) => SessionStoreUnavailableException.Refused(Store, operation, postgres),
        PostgresException postgres when IsResourceState(postgres.SqlState) => SessionStoreUnavailableException.Failed(
            Store, operation, "SQLSTATE " + postgres.SqlState, $"Check the server at {server}: connections, disk and memory.", postgres),
        PostgresException => null,
        NpgsqlException { InnerException: TimeoutException } pool when pool.Message.Contains("pool", StringComparison.OrdinalIgnoreCase) => SessionStoreUnavailableException.Failed(
            Store, operation, "no free connection in the pool", "Raise Maximum Pool Size or Timeout in the connection string, or lower the load.", pool),
        NpgsqlException or TimeoutException or OperationCanceledException when IsTimeout(exception) => SessionStoreUnavailableException.TimedOut(Store, operation, timeout, TimeoutSetting, exception),
        NpgsqlException or IOException or SocketException => SessionStoreUnavailableException.Refused(Store, operation, exception),
        _ => null,
    };

    private static bool IsTimeout(Exception exception)
        => exception is TimeoutException or OperationCanceledException || exception.InnerException is TimeoutException;

    private static bool IsConnectionState(string sqlState)
        => sqlState.StartsWith("08", StringComparison.Ordinal) // connection exception
        || sqlState.StartsWith("57P", StringComparison.Ordinal); // shutting down, crashed, not yet accepting connections

    private static bool IsResourceState(string sqlState)
        => sqlState.StartsWith("53", StringComparison.Ordinal) // insufficient resources (too many connections, disk full)
        || sqlState.StartsWith("58", StringComparison.Ordinal); // system error
}
