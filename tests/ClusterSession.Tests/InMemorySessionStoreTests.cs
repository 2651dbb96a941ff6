using ClusterSession.InMemory;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSession.Tests;

public sealed class InMemorySessionStoreTests
{
    private static readonly TimeSpan Idle = TimeSpan.FromMinutes(20);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    [Fact]
    public async Task Sweep_removes_expired_sessions_in_bounded_batches_when_the_clock_advances()
    {
        using var store = new InMemorySessionStore(new InMemorySessionStoreOptions { SweepInterval = TimeSpan.FromHours(1), SweepBatchSize = 10 }, _time);
        var live = await CreateAsync(store, idle: TimeSpan.FromHours(8));
        for (var i = 0; i < 25; i++)
        {
            await CreateAsync(store);
        }

        // Expired but neither swept nor read yet: still counted.
        _time.Advance(TimeSpan.FromMinutes(59));
        Assert.Equal(26, await store.CountAsync());

        // Each tick examines at most 10 sessions (the live one among them, wherever it falls), so 26 take three ticks.
        var before = 26L;
        for (var tick = 1; tick <= 3; tick++)
        {
            _time.Advance(tick == 1 ? TimeSpan.FromMinutes(1) : TimeSpan.FromHours(1));
            var after = await store.CountAsync();
            Assert.InRange(before - after, 1, 10);
            before = after;
        }

        Assert.Equal(1, await store.CountAsync());
        Assert.Equal(SessionHandle.FromId(live), Assert.Single(await store.FindByPrincipalAsync("p")).Handle);
    }

    [Fact]
    public async Task Sweep_keeps_live_sessions()
    {
        using var store = new InMemorySessionStore(new InMemorySessionStoreOptions { SweepInterval = TimeSpan.FromMinutes(1), SweepBatchSize = 2 }, _time);
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add(await CreateAsync(store));
        }

        for (var minute = 0; minute < 10; minute++)
        {
            _time.Advance(TimeSpan.FromMinutes(1));
        }

        Assert.Equal(5, await store.CountAsync());
        foreach (var id in ids)
        {
            Assert.NotNull(await store.LoadAsync(id));
        }
    }

    [Fact]
    public async Task Dispose_stops_the_sweep_but_reads_still_enforce_expiry()
    {
        var store = new InMemorySessionStore(new InMemorySessionStoreOptions { SweepInterval = TimeSpan.FromMinutes(1) }, _time);
        var id = await CreateAsync(store);
        store.Dispose();

        _time.Advance(Idle + TimeSpan.FromMinutes(5));

        Assert.Equal(1, await store.CountAsync());
        Assert.Null(await store.LoadAsync(id));
        Assert.Equal(0, await store.CountAsync());
    }

    [Fact]
    public async Task Loads_refresh_the_last_access_only_after_the_touch_interval()
    {
        using var store = new InMemorySessionStore(new InMemorySessionStoreOptions { TouchIntervalFraction = 0.1 }, _time);
        var start = _time.GetUtcNow();
        var id = await CreateAsync(store);

        _time.Advance(TimeSpan.FromSeconds(119));
        Assert.Equal(start, (await store.LoadAsync(id))!.LastAccessedAt);

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(start + TimeSpan.FromMinutes(2), (await store.LoadAsync(id))!.LastAccessedAt);

        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(start + TimeSpan.FromMinutes(2), (await store.LoadAsync(id))!.LastAccessedAt);
    }

    [Fact]
    public async Task Touch_fraction_zero_refreshes_on_every_load()
    {
        using var store = new InMemorySessionStore(new InMemorySessionStoreOptions { TouchIntervalFraction = 0 }, _time);
        var id = await CreateAsync(store);

        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal(_time.GetUtcNow(), (await store.LoadAsync(id))!.LastAccessedAt);
    }

    [Fact]
    public async Task Saves_always_refresh_the_last_access()
    {
        using var store = new InMemorySessionStore(timeProvider: _time);
        var id = await CreateAsync(store);

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(id)));

        Assert.Equal(_time.GetUtcNow(), (await store.LoadAsync(id))!.LastAccessedAt);
    }

    [Fact]
    public async Task Create_reuses_the_id_of_an_expired_session()
    {
        using var store = new InMemorySessionStore(timeProvider: _time);
        var id = await CreateAsync(store);
        _time.Advance(Idle + TimeSpan.FromSeconds(1));

        Assert.True(await store.CreateAsync(SessionSnapshot.CreateNew(id, _time.GetUtcNow(), Idle, TimeSpan.FromHours(1), principal: "q")));

        Assert.Equal("q", (await store.LoadAsync(id))!.Principal);
        Assert.Empty(await store.FindByPrincipalAsync("p"));
        Assert.Single(await store.FindByPrincipalAsync("q"));
    }

    [Fact]
    public async Task Stored_values_are_copies_of_the_callers_arrays()
    {
        using var store = new InMemorySessionStore(timeProvider: _time);
        var id = await CreateAsync(store);
        var value = new byte[] { 1, 2, 3 };
        await store.SaveAsync(new SessionChanges(id, new Dictionary<string, byte[]> { ["v"] = value }));

        value[0] = 9;

        Assert.Equal(new byte[] { 1, 2, 3 }, (await store.LoadAsync(id))!.Attributes["v"]);
    }

    [Fact]
    public void Invalid_sweep_options_and_limits_are_rejected_with_every_option_named()
    {
        var options = new InMemorySessionStoreOptions { SweepInterval = TimeSpan.Zero, SweepBatchSize = 0, Limits = null! };

        var errors = options.Validate();
        var error = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => new InMemorySessionStore(options));

        Assert.Equal(3, errors.Count);
        Assert.Contains("SweepInterval", error.Message, StringComparison.Ordinal);
        Assert.Contains("SweepBatchSize", error.Message, StringComparison.Ordinal);
        Assert.Contains("Limits", error.Message, StringComparison.Ordinal);
        Assert.Empty(new InMemorySessionStoreOptions().Validate());
    }

    [Fact]
    public async Task Custom_limits_are_enforced()
    {
        using var store = new InMemorySessionStore(new InMemorySessionStoreOptions { Limits = new SessionLimits { MaxValueBytes = 4 } }, _time);
        var id = await CreateAsync(store);

        await Assert.ThrowsAsync<SessionLimitExceededException>(async () => await store.SaveAsync(new SessionChanges(id, new Dictionary<string, byte[]> { ["v"] = new byte[5] })));
        Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(id, new Dictionary<string, byte[]> { ["v"] = new byte[4] })));
    }

    private async Task<string> CreateAsync(InMemorySessionStore store, TimeSpan? idle = null)
    {
        var session = SessionSnapshot.CreateNew(SessionId.Create(), _time.GetUtcNow(), idle ?? Idle, TimeSpan.FromHours(8), principal: "p");
        Assert.True(await store.CreateAsync(session));
        return session.Id!;
    }
}
