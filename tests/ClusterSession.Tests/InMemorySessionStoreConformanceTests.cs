using ClusterSession.InMemory;
using ClusterSession.Testing;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSession.Tests;

public sealed class InMemorySessionStoreConformanceTests : SessionStoreConformanceTests
{
    // Each in-memory round takes microseconds, so the race window is narrow: run many.
    protected override int RaceRounds => 2000;

    protected override Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time)
        => Task.FromResult<ISessionStore>(new InMemorySessionStore(timeProvider: time));

    protected override ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure)
    {
        var options = new InMemorySessionStoreOptions();
        configure(options);
        return new InMemorySessionStore(options);
    }
}
