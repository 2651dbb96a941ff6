using ClusterSession.Testing;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSession.Postgres.Tests;

/// <summary>The whole store conformance suite on logged tables, each test on tables of its own.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresConformanceTests(PostgresTestServer server) : SessionStoreConformanceTests
{
    protected override async Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time)
        // The background cleanup runs on the fake clock, so the suite's clock jumps exercise it too.
        => await server.CreateStoreAsync(time, unlogged: false, o => o.CleanupInterval = TimeSpan.FromMinutes(1));

    protected override Task DisposeStoreAsync(ISessionStore store) => server.DropAsync((PostgresSessionStore)store);

    protected override ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure) => server.CreateStoreWithOptions(configure);
}

/// <summary>The whole store conformance suite on UNLOGGED tables.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresUnloggedConformanceTests(PostgresTestServer server) : SessionStoreConformanceTests
{
    protected override async Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time)
        => await server.CreateStoreAsync(time, unlogged: true, o => o.CleanupInterval = TimeSpan.FromMinutes(1));

    protected override Task DisposeStoreAsync(ISessionStore store) => server.DropAsync((PostgresSessionStore)store);

    protected override ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure) => server.CreateStoreWithOptions(configure);
}
