using System.Text;
using Npgsql;

namespace ClusterSession.Postgres;

/// <summary>
/// Options of <see cref="PostgresSessionStore"/>. Set either <see cref="ConnectionString"/> or
/// <see cref="DataSource"/>. Validated when the store is created (and at startup through
/// <c>AddPostgresSessionStore</c>); messages name the option and the fix.
/// </summary>
public sealed class PostgresSessionStoreOptions
{
    /// <summary>The longest identifier PostgreSQL keeps, in bytes (NAMEDATALEN - 1).</summary>
    internal const int MaxIdentifierBytes = 63;

    /// <summary>The longest name the store derives from <see cref="TablePrefix"/> without the prefix.</summary>
    internal const string LongestDerivedName = "attributes_session_fkey";

    /// <summary>
    /// The Npgsql connection string. The store builds and owns one <see cref="NpgsqlDataSource"/> from it,
    /// enabling automatic statement preparation unless the string sets <c>Max Auto Prepare</c>. Default null.
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>
    /// A data source to use instead of <see cref="ConnectionString"/>; the store does not dispose it.
    /// Enable <c>Max Auto Prepare</c> on it for prepared statements. Default null.
    /// </summary>
    public NpgsqlDataSource? DataSource { get; set; }

    /// <summary>The schema that holds the tables. Default <c>public</c>. Quoted, so case-sensitive.</summary>
    public string Schema { get; set; } = "public";

    /// <summary>
    /// The prefix of the table and index names: <c>{prefix}sessions</c> and <c>{prefix}attributes</c>.
    /// Default <c>clustersession_</c>. Quoted, so case-sensitive; may be empty.
    /// </summary>
    public string TablePrefix { get; set; } = "clustersession_";

    /// <summary>
    /// Whether <see cref="PostgresSessionStore.CreateSchemaAsync"/> creates UNLOGGED tables: no WAL,
    /// faster writes, but emptied after a crash and not replicated to standbys. Has no effect on
    /// tables that already exist. Default false.
    /// </summary>
    public bool Unlogged { get; set; }

    /// <summary>
    /// A load refreshes the last access time and the expiry only when the last refresh is older than
    /// this fraction of the idle timeout, so that most reads write nothing. 0 refreshes on every load.
    /// Between 0 and 0.5. Default 0.1 (a 30-minute idle timeout is refreshed at most every 3 minutes).
    /// </summary>
    public double TouchIntervalFraction { get; set; } = 0.1;

    /// <summary>
    /// How often the background cleanup deletes expired sessions (timed by the store's
    /// <see cref="TimeProvider"/>). <see cref="Timeout.InfiniteTimeSpan"/> turns it off; call
    /// <see cref="PostgresSessionStore.CleanupExpiredAsync"/> yourself then. Default 1 minute.
    /// </summary>
    public TimeSpan CleanupInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The most sessions one cleanup statement deletes (one short transaction per batch). Default 1,000.</summary>
    public int CleanupBatchSize { get; set; } = 1000;

    /// <summary>
    /// How long one command may take before the store gives up with
    /// <see cref="SessionStoreUnavailableException"/>. Whole seconds, at least 1. Default 5 seconds.
    /// </summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Attribute limits checked before every write. Default <see cref="SessionLimits.Default"/>.</summary>
    public SessionLimits Limits { get; set; } = SessionLimits.Default;

    /// <summary>
    /// Whether the store runs <see cref="PostgresSessionStore.CreateSchemaAsync"/> itself before its
    /// first command. It only creates what is missing and never alters existing tables. Default false:
    /// create the schema explicitly or with <c>schema.sql</c>.
    /// </summary>
    public bool CreateSchemaOnStartup { get; set; }

    /// <summary>Returns every problem with these options, each naming the option and the fix; empty when valid.</summary>
    internal List<string> Validate()
    {
        var failures = new List<string>();
        if (DataSource is null && string.IsNullOrWhiteSpace(ConnectionString))
        {
            failures.Add("PostgresSessionStoreOptions: set ConnectionString (e.g. \"Host=db;Username=app;Password=...;Database=app\") or DataSource.");
        }
        else if (DataSource is not null && !string.IsNullOrWhiteSpace(ConnectionString))
        {
            failures.Add("PostgresSessionStoreOptions: set either ConnectionString or DataSource, not both.");
        }
        else if (DataSource is null)
        {
            try
            {
                _ = new NpgsqlConnectionStringBuilder(ConnectionString);
            }
            catch (ArgumentException ex)
            {
                failures.Add($"PostgresSessionStoreOptions.ConnectionString is not a valid Npgsql connection string: {ex.Message}");
            }
        }

        if (string.IsNullOrEmpty(Schema) || Schema.Contains('\0', StringComparison.Ordinal) || Encoding.UTF8.GetByteCount(Schema) > MaxIdentifierBytes)
        {
            failures.Add($"PostgresSessionStoreOptions.Schema must be a non-empty name of at most {MaxIdentifierBytes} bytes without NUL characters (default \"public\").");
        }

        var maxPrefixBytes = MaxIdentifierBytes - LongestDerivedName.Length;
        if (TablePrefix is null || TablePrefix.Contains('\0', StringComparison.Ordinal) || Encoding.UTF8.GetByteCount(TablePrefix) > maxPrefixBytes)
        {
            failures.Add($"PostgresSessionStoreOptions.TablePrefix must be at most {maxPrefixBytes} bytes without NUL characters, so that every derived name fits PostgreSQL's {MaxIdentifierBytes}-byte limit (default \"clustersession_\").");
        }

        if (!(TouchIntervalFraction >= 0 && TouchIntervalFraction <= 0.5))
        {
            failures.Add($"PostgresSessionStoreOptions.TouchIntervalFraction is {TouchIntervalFraction}: use a value from 0 (refresh on every load) to 0.5 (default 0.1).");
        }

        if (CleanupInterval != Timeout.InfiniteTimeSpan && CleanupInterval < TimeSpan.FromSeconds(1))
        {
            failures.Add($"PostgresSessionStoreOptions.CleanupInterval is {CleanupInterval}: use at least 1 second, or Timeout.InfiniteTimeSpan to turn the background cleanup off.");
        }

        if (CleanupBatchSize is < 1 or > 100_000)
        {
            failures.Add($"PostgresSessionStoreOptions.CleanupBatchSize is {CleanupBatchSize}: use 1 to 100,000 (default 1,000).");
        }

        if (CommandTimeout < TimeSpan.FromSeconds(1) || CommandTimeout > TimeSpan.FromHours(1))
        {
            failures.Add($"PostgresSessionStoreOptions.CommandTimeout is {CommandTimeout}: use 1 second to 1 hour (default 5 seconds).");
        }

        if (Limits is null)
        {
            failures.Add("PostgresSessionStoreOptions.Limits must not be null: leave it at SessionLimits.Default or set limits.");
        }

        return failures;
    }
}
