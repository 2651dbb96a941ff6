using ClusterSession.Testing.Servers;
using Npgsql;

namespace ClusterSession.Postgres.Tests;

/// <summary>One PostgreSQL server (and one data source) shared by the test classes of the "postgres" collection.</summary>
public sealed class PostgresTestServer : IAsyncLifetime
{
    private NpgsqlDataSource? _dataSource;

    public PostgresServerFixture Server { get; } = new();

    public NpgsqlDataSource DataSource => _dataSource ?? throw new InvalidOperationException("The server starts in InitializeAsync.");

    public async Task InitializeAsync()
    {
        await Server.InitializeAsync();
        _dataSource = NewDataSource(Server.ConnectionString);
    }

    public async Task DisposeAsync()
    {
        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync();
        }

        await Server.DisposeAsync();
    }

    /// <summary>A data source with statement preparation on, as the store builds one itself.</summary>
    public static NpgsqlDataSource NewDataSource(string connectionString)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        builder.ConnectionStringBuilder.MaxAutoPrepare = 32;
        return builder.Build();
    }

    /// <summary>
    /// A store on tables of its own (a fresh table prefix in schema cs_tests), created with CreateSchemaAsync.
    /// The background cleanup is off unless <paramref name="configure"/> turns it on.
    /// </summary>
    public Task<PostgresSessionStore> CreateStoreAsync(TimeProvider time, bool unlogged = false, Action<PostgresSessionStoreOptions>? configure = null)
        => CreateStoreAsync(DataSource, time, unlogged, configure);

    public static async Task<PostgresSessionStore> CreateStoreAsync(NpgsqlDataSource dataSource, TimeProvider time, bool unlogged = false, Action<PostgresSessionStoreOptions>? configure = null)
    {
        var options = NewOptions(dataSource, unlogged);
        configure?.Invoke(options);
        var store = new PostgresSessionStore(options, time);
        await store.CreateSchemaAsync();
        return store;
    }

    public static PostgresSessionStoreOptions NewOptions(NpgsqlDataSource dataSource, bool unlogged = false) => new()
    {
        DataSource = dataSource,
        Schema = "cs_tests",
        TablePrefix = "t" + Guid.NewGuid().ToString("N")[..12] + "_",
        Unlogged = unlogged,
        CleanupInterval = Timeout.InfiniteTimeSpan,
    };

    /// <summary>A store on the shared data source that creates no tables (so creating it checks only the options).</summary>
    public PostgresSessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure)
    {
        var options = NewOptions(DataSource);
        configure(options);
        return new PostgresSessionStore(options);
    }

    /// <summary>Disposes the store and drops its tables.</summary>
    public async Task DropAsync(PostgresSessionStore store)
    {
        await store.DisposeAsync();
        await using var command = DataSource.CreateCommand($"DROP TABLE IF EXISTS {store.AttributesTableName}, {store.SessionsTableName}, {store.KeyRingTableName}, {store.StoreTableName}, {store.EventClaimsTableName}");
        await command.ExecuteNonQueryAsync();
    }

    public async Task<long> ScalarAsync(string sql)
    {
        await using var command = DataSource.CreateCommand(sql);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresTestServer>
{
    public const string Name = "postgres";
}
