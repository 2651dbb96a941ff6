using ClusterSession.InMemory;
using ClusterSession.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSession.Tests;

/// <summary><c>UseInMemory</c> registers like every other store: through the builder, with the host's limits only.</summary>
public sealed class InMemoryRegistrationTests
{
    [Fact]
    public async Task UseInMemory_store_enforces_the_host_limits()
    {
        var builder = new TestSessionStoreBuilder { Limits = new SessionLimits { MaxAttributes = 1 } };
        builder.UseInMemory(o => o.SweepInterval = TimeSpan.FromMinutes(5));
        await using var store = Assert.IsType<InMemorySessionStore>(builder.CreateStore());
        var session = SessionSnapshot.CreateNew(SessionId.Create(), DateTimeOffset.UtcNow, TimeSpan.FromMinutes(20), TimeSpan.FromHours(1));

        Assert.True(await store.CreateAsync(session));
        var error = await Assert.ThrowsAsync<SessionLimitExceededException>(async () =>
            await store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["a"] = [1], ["b"] = [2] })));
        Assert.Contains("SessionLimits.MaxAttributes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UseInMemory_refuses_store_limits_other_than_the_host_limits()
    {
        var builder = new TestSessionStoreBuilder().UseInMemory(o => o.Limits = new SessionLimits { MaxValueBytes = 8 });

        var error = Assert.Throws<OptionsValidationException>(() => builder.CreateStore());

        Assert.Contains("InMemorySessionStoreOptions.Limits differs from the limits of the host", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UseInMemory_store_options_are_validated_with_the_option_named()
    {
        var builder = new TestSessionStoreBuilder().UseInMemory(o => o.SweepBatchSize = 0);

        var error = Assert.Throws<OptionsValidationException>(() => builder.CreateStore());

        Assert.Contains("InMemorySessionStoreOptions.SweepBatchSize", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Disposing_the_store_sync_or_async_stops_the_sweep_and_reads_still_expire(bool disposeAsync)
    {
        var time = new FakeTimeProvider();
        var store = new InMemorySessionStore(timeProvider: time);
        var id = SessionId.Create();
        Assert.True(await store.CreateAsync(SessionSnapshot.CreateNew(id, time.GetUtcNow(), TimeSpan.FromMinutes(1), TimeSpan.FromHours(1))));

        if (disposeAsync)
        {
            await store.DisposeAsync();
        }
        else
        {
            store.Dispose();
        }

        time.Advance(TimeSpan.FromMinutes(10));

        Assert.Equal(1, await store.CountAsync()); // no sweep ran
        Assert.Null(await store.LoadAsync(id));     // expiry still holds on read
    }
}
