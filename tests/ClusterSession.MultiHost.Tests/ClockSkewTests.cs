using System.Globalization;
using System.Net;
using ClusterSession.Testing.Servers;
using Npgsql;
using StackExchange.Redis;

namespace ClusterSession.MultiHost.Tests;

/// <summary>
/// Nodes whose wall clocks are off, for real: each runs as its own process under faketime, on the production
/// code path (TimeProvider.System, nothing injected). Expiry is decided on the store's clock, so a node ahead
/// deletes no live session and a node behind keeps no expired one alive.
/// </summary>
public abstract class ClockSkewTests(SkewedHosts hosts)
{
    private const string Cookie = ".ClusterSession";

    [Fact]
    public async Task Node_25_minutes_ahead_reads_a_session_with_a_20_minute_idle_timeout_as_live()
    {
        await AssertClockAsync(hosts.Ahead25Minutes, TimeSpan.FromMinutes(25));
        var browser = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(hosts.Correct20MinuteIdle, "/session/cart/apples")).Status);

        Assert.Equal((HttpStatusCode.OK, "apples"), await browser.GetAsync(hosts.Ahead25Minutes, "/session/cart"));
        Assert.Equal((HttpStatusCode.OK, "apples"), await browser.GetAsync(hosts.Correct20MinuteIdle, "/session/cart"));
    }

    [Fact]
    public async Task Node_30_seconds_ahead_does_not_delete_a_session_with_a_60_second_idle_timeout()
    {
        await AssertClockAsync(hosts.Ahead30Seconds, TimeSpan.FromSeconds(30));
        var browser = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(hosts.Correct60SecondIdle, "/session/cart/pears")).Status);

        // Idle 35 seconds by the store's clock: 25 seconds to live, 5 seconds left by the node's clock.
        await hosts.AgeAsync(browser.Cookies[Cookie], TimeSpan.FromSeconds(35), TimeSpan.FromSeconds(60));
        Assert.Equal((HttpStatusCode.OK, "pears"), await browser.GetAsync(hosts.Ahead30Seconds, "/session/cart"));
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(hosts.Ahead30Seconds, "/session/note/kept")).Status);
        Assert.Equal((HttpStatusCode.OK, "kept"), await browser.GetAsync(hosts.Correct60SecondIdle, "/session/note"));
        Assert.True(await hosts.IsLiveAsync(browser.Cookies[Cookie]), "The session the node ahead read is not live in the store.");
    }

    [Fact]
    public async Task Node_25_minutes_behind_does_not_keep_a_session_alive_past_its_expiry_by_the_store_clock()
    {
        await AssertClockAsync(hosts.Behind25Minutes, TimeSpan.FromMinutes(-25));
        var browser = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(hosts.Correct60SecondIdle, "/session/cart/plums")).Status);
        Assert.Equal((HttpStatusCode.OK, "plums"), await browser.GetAsync(hosts.Behind25Minutes, "/session/cart"));

        // Idle 61 seconds by the store's clock (a Redis key is left in place: its TTL not yet acted on).
        await hosts.AgeAsync(browser.Cookies[Cookie], TimeSpan.FromSeconds(61), TimeSpan.FromSeconds(60));

        Assert.Equal(HttpStatusCode.NotFound, (await browser.GetAsync(hosts.Behind25Minutes, "/session/cart")).Status);
        Assert.False(await hosts.IsLiveAsync(browser.Cookies[Cookie]), "The node behind brought an expired session back to life.");
    }

    /// <summary>Guards the test itself: the host's clock really is off by <paramref name="offset"/>.</summary>
    private static async Task AssertClockAsync(AppHost host, TimeSpan offset)
    {
        var (status, body) = await new Browser().GetAsync(host, "/clock");
        Assert.Equal(HttpStatusCode.OK, status);
        var skew = DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(body, CultureInfo.InvariantCulture)) - DateTimeOffset.UtcNow;
        Assert.InRange(skew, offset - TimeSpan.FromSeconds(10), offset + TimeSpan.FromSeconds(10));
    }
}

/// <summary>
/// Five hosts of the app over one store: two with correct clocks (20-minute and 60-second idle timeouts), and
/// under faketime one 25 minutes ahead (20-minute idle), one 30 seconds ahead and one 25 minutes behind (60-second idle).
/// </summary>
public abstract class SkewedHosts : IAsyncLifetime
{
    private AppHost[] _hosts = [];

    public AppHost Correct20MinuteIdle => _hosts[0];

    public AppHost Ahead25Minutes => _hosts[1];

    public AppHost Correct60SecondIdle => _hosts[2];

    public AppHost Ahead30Seconds => _hosts[3];

    public AppHost Behind25Minutes => _hosts[4];

    public async Task InitializeAsync()
    {
        await StartStoreAsync();
        string[] Long(AppHost.Paths paths) => [.. StoreArguments(), "--IdleTimeoutSeconds", "1200"];
        string[] Short(AppHost.Paths paths) => [.. StoreArguments(), "--IdleTimeoutSeconds", "60"];
        var starting = new[]
        {
            AppHost.StartAsync(Long),
            AppHost.StartAsync(Long, "+25m"),
            AppHost.StartAsync(Short),
            AppHost.StartAsync(Short, "+30s"),
            AppHost.StartAsync(Short, "-25m"),
        };
        try
        {
            _hosts = await Task.WhenAll(starting);

            // A store call of a process under faketime may fail while its first connection settles: each host
            // writes a session once before the tests start, retried by condition within a deadline.
            foreach (var host in _hosts)
            {
                await ServerProcess.UntilAsync(
                    async () => (await new Browser().PostAsync(host, "/session/warm/up")).Status == HttpStatusCode.OK,
                    TimeSpan.FromSeconds(30),
                    $"the test app on {host.Address} writes a session");
            }
        }
        catch
        {
            foreach (var host in starting.Where(t => t.IsCompletedSuccessfully))
            {
                await host.Result.DisposeAsync();
            }

            throw;
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var host in _hosts)
        {
            await host.DisposeAsync();
        }

        await StopStoreAsync();
    }

    /// <summary>Whether the store holds the session as live by its own clock.</summary>
    public abstract Task<bool> IsLiveAsync(string id);

    /// <summary>Dates the session's last access <paramref name="idleFor"/> back on the store's clock, with the expiry that implies.</summary>
    public abstract Task AgeAsync(string id, TimeSpan idleFor, TimeSpan idleTimeout);

    protected abstract Task StartStoreAsync();

    protected abstract Task StopStoreAsync();

    protected abstract string[] StoreArguments();
}

public sealed class RedisSkewedHosts : SkewedHosts
{
    private readonly RedisServerFixture _redis = new();
    private readonly string _prefix = "sk" + Guid.NewGuid().ToString("N")[..8] + ":";

    public override async Task<bool> IsLiveAsync(string id)
    {
        await using var connection = await ConnectionMultiplexer.ConnectAsync(_redis.Configuration);
        // '#' = "created,access,idle,lifetime,version[,principal]", access and lifetime in ms after created.
        var meta = await connection.GetDatabase().HashGetAsync(await KeyAsync(connection, id), "#");
        var now = await StoreNowAsync(connection);
        if (meta.IsNull)
        {
            return false;
        }

        var parts = ((string)meta!).Split(',', 5).Take(4).Select(p => long.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        return now < parts[0] + Math.Min(parts[1] + parts[2], parts[3]);
    }

    public override async Task AgeAsync(string id, TimeSpan idleFor, TimeSpan idleTimeout)
    {
        await using var connection = await ConnectionMultiplexer.ConnectAsync(_redis.Configuration);
        var db = connection.GetDatabase();
        var now = await StoreNowAsync(connection);
        var key = await KeyAsync(connection, id);
        Assert.True(await db.KeyExistsAsync(key));
        // The last access moves back; an access before creation moves the creation back with it, keeping the absolute expiry.
        var parts = ((string)(await db.HashGetAsync(key, "#"))!).Split(',', 5);
        var created = long.Parse(parts[0], CultureInfo.InvariantCulture);
        var absolute = created + long.Parse(parts[3], CultureInfo.InvariantCulture);
        var access = now - (long)idleFor.TotalMilliseconds;
        created = Math.Min(created, access);
        await db.HashSetAsync(key, "#", string.Join(',', created, access - created, parts[2], absolute - created, parts[4]));
        if (idleTimeout > idleFor)
        {
            await db.KeyExpireAsync(key, idleTimeout - idleFor);
        }
    }

    protected override Task StartStoreAsync() => _redis.InitializeAsync();

    protected override Task StopStoreAsync() => _redis.DisposeAsync();

    protected override string[] StoreArguments() => ["--Store", "redis", "--Redis", _redis.Configuration, "--Prefix", _prefix];

    private static async Task<long> StoreNowAsync(ConnectionMultiplexer connection)
        => new DateTimeOffset(DateTime.SpecifyKind(await connection.GetServers()[0].TimeAsync(), DateTimeKind.Utc)).ToUnixTimeMilliseconds();

    /// <summary>The session's key: the store names it by its handle after a slot tag (docs/redis-data-model.md), so it is found by the handle.</summary>
    private async Task<RedisKey> KeyAsync(ConnectionMultiplexer connection, string id)
    {
        await foreach (var key in connection.GetServers()[0].KeysAsync(pattern: _prefix + "s3:*" + SessionHandle.FromId(id)))
        {
            return key;
        }

        return _prefix + "s3:{}" + SessionHandle.FromId(id);
    }
}

public sealed class PostgresSkewedHosts : SkewedHosts
{
    private readonly PostgresServerFixture _postgres = new();
    private readonly string _prefix = "sk" + Guid.NewGuid().ToString("N")[..8] + "_";

    public override async Task<bool> IsLiveAsync(string id)
    {
        await using var dataSource = NpgsqlDataSource.Create(_postgres.ConnectionString);
        await using var command = dataSource.CreateCommand($"SELECT count(*) FROM \"public\".\"{_prefix}sessions\" WHERE id = $1 AND expires_at > now()");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = SessionHandle.FromId(id) });
        return (long)(await command.ExecuteScalarAsync())! == 1;
    }

    public override async Task AgeAsync(string id, TimeSpan idleFor, TimeSpan idleTimeout)
    {
        await using var dataSource = NpgsqlDataSource.Create(_postgres.ConnectionString);
        await using var command = dataSource.CreateCommand(
            $"UPDATE \"public\".\"{_prefix}sessions\" SET last_accessed_at = now() - $2, expires_at = now() - $2 + $3 WHERE id = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = SessionHandle.FromId(id) });
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = idleFor });
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = idleTimeout });
        Assert.Equal(1, await command.ExecuteNonQueryAsync());
    }

    protected override Task StartStoreAsync() => _postgres.InitializeAsync();

    protected override Task StopStoreAsync() => _postgres.DisposeAsync();

    protected override string[] StoreArguments() => ["--Store", "postgres", "--Postgres", _postgres.ConnectionString, "--Prefix", _prefix];
}

public sealed class RedisClockSkewTests(RedisSkewedHosts hosts) : ClockSkewTests(hosts), IClassFixture<RedisSkewedHosts>;

public sealed class PostgresClockSkewTests(PostgresSkewedHosts hosts) : ClockSkewTests(hosts), IClassFixture<PostgresSkewedHosts>;
