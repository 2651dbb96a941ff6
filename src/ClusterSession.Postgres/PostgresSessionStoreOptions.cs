using System.Text;
using Npgsql;

namespace ClusterSession.Postgres;

/// <summary>
/// Options of <see cref="PostgresSessionStore"/>. Set either <see cref="ConnectionString"/> or
/// <see cref="DataSource"/>. Validated when the store is created (at startup through
/// <c>AddClusterSession(o =&gt; o.UsePostgres(...))</c>); messages name the option and the fix. The options every store shares
/// (touch interval, limits) and their validation are on <see cref="SessionStoreOptions"/>.
/// </summary>
public sealed class PostgresSessionStoreOptions : SessionStoreOptions
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
    /// How often the background cleanup deletes expired sessions (timed by the store's
    /// <see cref="TimeProvider"/>). <see cref="Timeout.InfiniteTimeSpan"/> turns it off; call
    /// <see cref="PostgresSessionStore.CleanupExpiredAsync"/> yourself then. Default 1 minute.
    /// </summary>
    public TimeSpan CleanupInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The most sessions one cleanup statement deletes (one short transaction per batch). Default 1,000.</summary>
    public int CleanupBatchSize { get; set; } = 1000;

    /// <summary>
    /// How long one store operation may take in total, a connection from the pool and every statement
    /// included. At the deadline the operation is cancelled (Npgsql asks the server to cancel the running
    /// statement) and fails with <see cref="SessionStoreUnavailableException"/>; a caller's own token (ASP.NET
    /// Core's <c>StoreTimeout</c>) can end it sooner. Also the Npgsql command timeout, so whole seconds,
    /// at least 1. Default 5 seconds.
    /// </summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Whether the store runs <see cref="PostgresSessionStore.CreateSchemaAsync"/> itself before its
    /// first command. It only creates what is missing and never alters existing tables. Default false:
    /// create the schema explicitly or with <c>schema.sql</c>.
    /// </summary>
    public bool CreateSchemaOnStartup { get; set; }

    /// <summary>
    /// The opt-in near cache: each node serves sessions it has read from its own memory, with no store round
    /// trip, until a change made through the store anywhere invalidates its copy. Off by default; see
    /// <see cref="NearCacheOptions"/> and docs/near-cache.md.
    /// </summary>
    public NearCacheOptions NearCache { get; set; } = new();

    /// <summary>
    /// How often the store reads the layout marker (and beats its heartbeat row) in the store table: a store on a database of the
    /// previous release writes that release's layout until the operator's upgrade (<see cref="PostgresSessionStore.UpgradeAsync"/>)
    /// moves the marker, and follows it within this interval. Use the same value on every node of an application (the upgrade
    /// judges which nodes are alive by it). Timed in real time, whatever the store's <see cref="TimeProvider"/>. Default 5 seconds.
    /// </summary>
    public TimeSpan LayoutRefreshInterval { get; set; } = TimeSpan.FromSeconds(5);

    private bool UsesMultiplexing()
    {
        try
        {
            return new NpgsqlConnectionStringBuilder(DataSource?.ConnectionString ?? ConnectionString).Multiplexing;
        }
        catch (ArgumentException)
        {
            // Reported as an invalid connection string.
            return false;
        }
    }

    /// <inheritdoc />
    protected override void AddFailures(ICollection<string> failures)
    {
        ArgumentNullException.ThrowIfNull(failures);
        AddNearCacheFailures(NearCache, failures);

        if (DataSource is null && string.IsNullOrWhiteSpace(ConnectionString))
        {
            failures.Add(Failure(nameof(ConnectionString), ConnectionString is null ? null : "(blank)", "set ConnectionString (e.g. \"Host=db;Username=app;Password=...;Database=app\") or DataSource."));
        }
        else if (DataSource is not null && !string.IsNullOrWhiteSpace(ConnectionString))
        {
            failures.Add(Failure(nameof(DataSource), "set together with ConnectionString", "set either ConnectionString or DataSource, not both."));
        }
        else if (DataSource is null)
        {
            try
            {
                _ = new NpgsqlConnectionStringBuilder(ConnectionString);
            }
            catch (ArgumentException ex)
            {
                // The builder's message names the bad keyword, never a value (the string may hold a password).
                failures.Add(Failure(nameof(ConnectionString), "not a valid Npgsql connection string", ex.Message));
            }
        }

        if (NearCache is { Enabled: true } && UsesMultiplexing())
        {
            failures.Add(Failure("NearCache.Enabled", true, "the near cache LISTENs on a connection of its own, which Npgsql's Multiplexing does not offer: remove Multiplexing=true from the connection string or leave the near cache off."));
        }

        if (string.IsNullOrEmpty(Schema) || Schema.Contains('\0', StringComparison.Ordinal) || Encoding.UTF8.GetByteCount(Schema) > MaxIdentifierBytes)
        {
            failures.Add(Failure(nameof(Schema), Schema, $"use a non-empty name of at most {MaxIdentifierBytes} bytes without NUL characters (default \"public\")."));
        }

        var maxPrefixBytes = MaxIdentifierBytes - LongestDerivedName.Length;
        if (TablePrefix is null || TablePrefix.Contains('\0', StringComparison.Ordinal) || Encoding.UTF8.GetByteCount(TablePrefix) > maxPrefixBytes)
        {
            failures.Add(Failure(nameof(TablePrefix), TablePrefix, $"use at most {maxPrefixBytes} bytes without NUL characters, so that every derived name fits PostgreSQL's {MaxIdentifierBytes}-byte limit (default \"clustersession_\")."));
        }

        if (CleanupInterval != Timeout.InfiniteTimeSpan && CleanupInterval < TimeSpan.FromSeconds(1))
        {
            failures.Add(Failure(nameof(CleanupInterval), CleanupInterval, "use at least 1 second, or Timeout.InfiniteTimeSpan to turn the background cleanup off."));
        }

        if (CleanupBatchSize is < 1 or > 100_000)
        {
            failures.Add(Failure(nameof(CleanupBatchSize), CleanupBatchSize, "use 1 to 100,000 (default 1,000)."));
        }

        if (LayoutRefreshInterval < TimeSpan.FromMilliseconds(100) || LayoutRefreshInterval > TimeSpan.FromMinutes(1))
        {
            failures.Add(Failure(nameof(LayoutRefreshInterval), LayoutRefreshInterval, "use 100 milliseconds to 1 minute (default 5 seconds)."));
        }

        if (CommandTimeout < TimeSpan.FromSeconds(1) || CommandTimeout > TimeSpan.FromHours(1))
        {
            failures.Add(Failure(nameof(CommandTimeout), CommandTimeout, "use 1 second to 1 hour (default 5 seconds)."));
        }
    }
}
