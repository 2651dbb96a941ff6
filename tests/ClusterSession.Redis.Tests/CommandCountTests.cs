using System.Globalization;
using ClusterSession.Testing.Servers;
using StackExchange.Redis;
using Xunit;

namespace ClusterSession.Redis.Tests;

/// <summary>
/// Counts what the store sends with INFO commandstats deltas. Redis counts the commands a script
/// runs inside it as well, so each test states the script's inner commands exactly and checks what
/// the client sent: one EVALSHA for a save, an EVALSHA and an HGETALL in one batch for a load.
/// </summary>
[Collection(StandaloneRedis.Name)]
public sealed class CommandCountTests(RedisServerFixture server)
{
    private static readonly HashSet<string> Background = ["info", "ping", "echo"];

    [Fact]
    public async Task Loading_a_recently_touched_session_reads_the_metadata_in_lua_and_the_hash_outside_it()
    {
        var (store, session) = await CreateWarmedUpAsync();

        var delta = await MeasureAsync(async () => Assert.NotNull(await store.LoadAsync(session.Id!)));

        // The EVALSHA runs one HMGET (metadata and moving marker); the HGETALL beside it is sent by the client.
        Assert.Equal(new Dictionary<string, long> { ["evalsha"] = 1, ["hmget"] = 1, ["hgetall"] = 1 }, delta);
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
    public async Task Loading_after_the_touch_interval_refreshes_in_the_same_round_trip()
    {
        var time = TestStores.NewClock();
        var store = await TestStores.CreateAsync(server.Configuration, time);
        var session = SessionSnapshot.CreateNew(SessionId.Create(), time.GetUtcNow(), TimeSpan.FromMinutes(20), TimeSpan.FromHours(8));
        await store.CreateAsync(session);
        await store.LoadAsync(session.Id!);
        time.Advance(TimeSpan.FromMinutes(5));

        var delta = await MeasureAsync(async () => Assert.NotNull(await store.LoadAsync(session.Id!)));

        Assert.Equal(new Dictionary<string, long> { ["evalsha"] = 1, ["hmget"] = 1, ["hset"] = 1, ["pexpire"] = 1, ["hgetall"] = 1 }, delta);
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
