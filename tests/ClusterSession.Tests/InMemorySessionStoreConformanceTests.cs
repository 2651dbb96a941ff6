using ClusterSession.InMemory;
using ClusterSession.Testing;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSession.Tests;

public sealed class InMemorySessionStoreConformanceTests : SessionStoreConformanceTests
{
    protected override Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time)
        => Task.FromResult<ISessionStore>(new InMemorySessionStore(timeProvider: time));
}
