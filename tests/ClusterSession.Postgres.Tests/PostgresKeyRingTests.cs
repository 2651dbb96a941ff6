using ClusterSession.Testing;

namespace ClusterSession.Postgres.Tests;

/// <summary>The key ring table, created with the schema, on tables of their own per ring.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresKeyRingTests(PostgresTestServer server) : KeyRingStoreConformanceTests
{
    protected override async Task<IKeyRingStore> CreateStoreAsync(string ring)
        => await server.CreateStoreAsync(TimeProvider.System, configure: o => o.TablePrefix = ring + "_");
}
