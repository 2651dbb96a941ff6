using ClusterSession.Postgres;
using ClusterSession.Testing.Servers;

namespace ClusterSession.AspNetCore.Tests;

[CollectionDefinition(Name)]
public sealed class AspNetCorePostgres : ICollectionFixture<PostgresServerFixture>
{
    public const string Name = "aspnetcore postgres";
}

/// <summary>The functional behaviour over PostgreSQL shared by the app instances (tables of its own per test).</summary>
[Collection(AspNetCorePostgres.Name)]
public sealed class PostgresClusterSessionTests(PostgresServerFixture postgres) : ClusterSessionFunctionalTests
{
    protected override async Task<ISessionStore> CreateStoreAsync()
    {
        var store = new PostgresSessionStore(new PostgresSessionStoreOptions
        {
            ConnectionString = postgres.ConnectionString,
            Schema = "cs_aspnetcore_tests",
            TablePrefix = "t" + Guid.NewGuid().ToString("N")[..12] + "_",
            CleanupInterval = Timeout.InfiniteTimeSpan,
        });
        await store.CreateSchemaAsync();
        return store;
    }
}
