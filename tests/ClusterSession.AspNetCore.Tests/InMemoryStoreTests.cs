namespace ClusterSession.AspNetCore.Tests;

/// <summary>The functional behaviour over the in-memory store shared by the app instances.</summary>
public sealed class InMemoryClusterSessionTests : ClusterSessionFunctionalTests
{
    protected override Task<ISessionStore> CreateStoreAsync() => Task.FromResult<ISessionStore>(new ClusterSession.InMemory.InMemorySessionStore());
}
