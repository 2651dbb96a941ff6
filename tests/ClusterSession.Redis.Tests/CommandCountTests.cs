using System.Globalization;
using ClusterSession.Testing.Servers;
using StackExchange.Redis;
using Xunit;

namespace ClusterSession.Redis.Tests;

/// <summary>
/// Counts what the store sends with INFO commandstats deltas. Redis counts the commands a script
/// runs inside it as well, so each test states the script's inner commands exactly and checks what
/// the client sent: one EVALSHA for a save, one HGETALL for a load (and the Load script with a second
/// HGETALL beside it when the touch is due).
/// </summary>
[Collection(StandaloneRedis.Name)]
public sealed class CommandCountTests(RedisServerFixture server)
{
    private static readonly HashSet<string> Background = ["info", "ping", "echo"];

    [Fact]
    public async Task Loading_a_recently_touched_session_is_one_plain_hgetall()
    {
        var (store, session) = await CreateWarmedUpAsync();

        var delta = await MeasureAsync(async () => Assert.NotNull(await store.LoadAsync(session.Id!)));

        Assert.Equal(new Dictionary<string, long> { ["hgetall"] = 1 }, delta);
    }

    [Fact]
    public async Task Saving_one_changed_attribute_sends_exactly_one_command()
    {
        var (store, session) = await CreateWarmedUpAsync();

        var delta = await MeasureAsync(async () => Assert.Equal(
            SessionSaveResult.Saved,
            await store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["cart"] = "[1,2,3]"u8.ToArray() }))));

        // Inside the one EVALSHA: HMGET metadata, HLEN (far below the attribute limit, so no field is checked one by one),
        // one HSET of the value and the new metadata (version + 1, last access now), PEXPIRE.
        Assert.Equal(new Dictionary<string, long> { ["evalsha"] = 1, ["hmget"] = 1, ["hlen"] = 1, ["hset"] = 1, ["pexpire"] = 1 }, delta);
    }

    [Fact]
    public async Task Loading_after_the_touch_interval_on_the_test_clock_runs_the_load_script_and_returns_the_touched_session()
    {
        var time = TestStores.NewClock();
        var store = await TestStores.CreateAsync(server.Configuration, time);
        var session = SessionSnapshot.CreateNew(SessionId.Create(), time.GetUtcNow(), TimeSpan.FromMinutes(20), TimeSpan.FromHours(8));
        await store.CreateAsync(session);
        await store.LoadAsync(session.Id!);
        time.Advance(TimeSpan.FromMinutes(5));

        SessionSnapshot? loaded = null;
        var delta = await MeasureAsync(async () => loaded = await store.LoadAsync(session.Id!));

        // The HGETALL shows the touch is due; the Load script (HMGET, HSET, PEXPIRE; the test clock replaces TIME)
        // touches, with a second HGETALL beside it.
        Assert.Equal(new Dictionary<string, long> { ["hgetall"] = 2, ["evalsha"] = 1, ["hmget"] = 1, ["hset"] = 1, ["pexpire"] = 1 }, delta);
        Assert.Equal(time.GetUtcNow().ToUnixTimeMilliseconds(), loaded!.LastAccessedAt.ToUnixTimeMilliseconds());
    }

    [Fact]
    public async Task Loading_just_before_the_touch_interval_on_the_test_clock_touches_nothing()
    {
        var time = TestStores.NewClock();
        var store = await TestStores.CreateAsync(server.Configuration, time);
        var session = SessionSnapshot.CreateNew(SessionId.Create(), time.GetUtcNow(), TimeSpan.FromMinutes(20), TimeSpan.FromHours(8));
        await store.CreateAsync(session);
        var created = (await store.LoadAsync(session.Id!))!.LastAccessedAt;

        // 0.1 (the default fraction) of 20 minutes is 2 minutes.
        time.Advance(TimeSpan.FromMinutes(2) - TimeSpan.FromMilliseconds(1));
        SessionSnapshot? loaded = null;
        var delta = await MeasureAsync(async () => loaded = await store.LoadAsync(session.Id!));

        Assert.Equal(new Dictionary<string, long> { ["hgetall"] = 1 }, delta);
        Assert.Equal(created, loaded!.LastAccessedAt);
    }

    [Fact]
    public async Task Loading_a_session_over_on_the_test_clock_deletes_it_though_redis_still_holds_it()
    {
        var time = TestStores.NewClock();
        var store = await TestStores.CreateAsync(server.Configuration, time);
        var session = SessionSnapshot.CreateNew(SessionId.Create(), time.GetUtcNow(), TimeSpan.FromMinutes(20), TimeSpan.FromHours(8));
        await store.CreateAsync(session);
        time.Advance(TimeSpan.FromMinutes(21));

        Assert.Null(await store.LoadAsync(session.Id!));

        var db = (await TestStores.MultiplexerAsync(server.Configuration)).GetDatabase();
        Assert.False(await db.KeyExistsAsync(store.SessionKeyForTests(session.Id!)));
    }

    [Fact]
    public async Task Loading_on_the_stores_clock_touches_when_the_last_access_is_older_than_the_interval_and_not_before()
    {
        var store = await TestStores.CreateAsync(server.Configuration, TimeProvider.System);
        var session = SessionSnapshot.CreateNew(SessionId.Create(), DateTimeOffset.UtcNow, TimeSpan.FromMinutes(20), TimeSpan.FromHours(8));
        await store.CreateAsync(session);
        await store.LoadAsync(session.Id!);
        await store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["a"] = [1] }));

        var fresh = await MeasureAsync(async () => Assert.NotNull(await store.LoadAsync(session.Id!)));
        Assert.Equal(new Dictionary<string, long> { ["hgetall"] = 1 }, fresh);

        // Behind the store's back: the session was created (and last accessed) 10 minutes ago by the store's clock.
        var db = (await TestStores.MultiplexerAsync(server.Configuration)).GetDatabase();
        var key = store.SessionKeyForTests(session.Id!);
        var storeNow = new DateTimeOffset(DateTime.SpecifyKind(await db.Multiplexer.GetServers().Single().TimeAsync(), DateTimeKind.Utc)).ToUnixTimeMilliseconds();
        var created = storeNow - (long)TimeSpan.FromMinutes(10).TotalMilliseconds;
        await db.HashSetAsync(key, "#", string.Create(CultureInfo.InvariantCulture, $"{created},0,{20 * 60_000},{8 * 3_600_000},5"));

        SessionSnapshot? loaded = null;
        var due = await MeasureAsync(async () => loaded = await store.LoadAsync(session.Id!));

        Assert.Equal(new Dictionary<string, long> { ["hgetall"] = 2, ["evalsha"] = 1, ["hmget"] = 1, ["time"] = 1, ["hset"] = 1, ["pexpire"] = 1 }, due);
        Assert.InRange(loaded!.LastAccessedAt.ToUnixTimeMilliseconds(), storeNow, storeNow + 60_000);
        Assert.Equal(created, loaded.CreatedAt.ToUnixTimeMilliseconds());
    }

    private async Task<(RedisSessionStore Store, SessionSnapshot Session)> CreateWarmedUpAsync()
    {
        var time = TestStores.NewClock();
        var store = await TestStores.CreateAsync(server.Configuration, time);
        var session = SessionSnapshot.CreateNew(SessionId.Create(), time.GetUtcNow(), TimeSpan.FromMinutes(20), TimeSpan.FromHours(8),
            new Dictionary<string, byte[]> { ["cart"] = "[1]"u8.ToArray() });
        await store.CreateAsync(session);

        // The first use of a script on a connection is an EVAL; later ones are EVALSHA.
        await store.LoadAsync(session.Id!);
        await store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["cart"] = "[1,2]"u8.ToArray() }));
        return (store, session);
    }

    private async Task<Dictionary<string, long>> MeasureAsync(Func<Task> action)
    {
        var multiplexer = await TestStores.MultiplexerAsync(server.Configuration);
        var redis = multiplexer.GetServers().Single();
        var before = await CommandStatsAsync(redis);
        await action();
        var after = await CommandStatsAsync(redis);
        return after
            .Select(a => (a.Key, Delta: a.Value - before.GetValueOrDefault(a.Key)))
            .Where(d => d.Delta != 0 && !Background.Contains(d.Key))
            .ToDictionary(d => d.Key, d => d.Delta);
    }

    private static async Task<Dictionary<string, long>> CommandStatsAsync(IServer redis)
    {
        var stats = new Dictionary<string, long>();
        foreach (var group in await redis.InfoAsync("commandstats"))
        {
            foreach (var (key, value) in group)
            {
                // cmdstat_hgetall: calls=3,usec=...
                var calls = value.Split(',')[0].Split('=')[1];
                stats[key["cmdstat_".Length..]] = long.Parse(calls, CultureInfo.InvariantCulture);
            }
        }

        return stats;
    }
}
