using System.Net;
using ClusterSession.Testing.Servers;

namespace ClusterSession.MultiHost.Tests;

/// <summary>
/// One shared store and four hosts of the app (four OS processes) that record the session lifecycle events they handle:
/// two deliver each event to every node, two (on another key or table prefix, so the pairs never hear each other) to one.
/// Sessions idle out after <see cref="IdleSeconds"/> seconds, so that an expiry comes within a test.
/// </summary>
public abstract class LifecycleHosts : IAsyncLifetime
{
    public const int IdleSeconds = 3;

    private AppHost[] _hosts = [];

    /// <summary>The two hosts that deliver every event to every node.</summary>
    public IReadOnlyList<AppHost> EveryNode => _hosts[..2];

    /// <summary>The two hosts that deliver each event to one node.</summary>
    public IReadOnlyList<AppHost> OneNode => _hosts[2..];

    public async Task InitializeAsync()
    {
        await StartStoreAsync();
        var every = "ev" + Guid.NewGuid().ToString("N")[..8];
        var one = "eo" + Guid.NewGuid().ToString("N")[..8];
        var started = await Task.WhenAll(
            AppHost.StartManyAsync(2, _ => [.. StoreArguments(every), "--Events", "every", "--IdleTimeoutSeconds", $"{IdleSeconds}"]),
            AppHost.StartManyAsync(2, _ => [.. StoreArguments(one), "--Events", "one", "--IdleTimeoutSeconds", $"{IdleSeconds}"]));
        _hosts = [.. started[0], .. started[1]];
    }

    public async Task DisposeAsync()
    {
        foreach (var host in _hosts)
        {
            await host.DisposeAsync();
        }

        await StopStoreAsync();
    }

    protected abstract Task StartStoreAsync();

    protected abstract Task StopStoreAsync();

    protected abstract string[] StoreArguments(string prefix);
}

/// <summary>A real redis-server; the app's connection may CONFIG SET (allowAdmin), so expiries are reported.</summary>
public sealed class RedisLifecycleHosts : LifecycleHosts
{
    private readonly RedisServerFixture _redis = new();

    protected override Task StartStoreAsync() => _redis.InitializeAsync();

    protected override Task StopStoreAsync() => _redis.DisposeAsync();

    protected override string[] StoreArguments(string prefix) => ["--Store", "redis", "--Redis", _redis.Configuration + ",allowAdmin=true", "--Prefix", prefix + ":"];
}

/// <summary>A real PostgreSQL server; the cleanup runs every second, so expiries are reported within about a second.</summary>
public sealed class PostgresLifecycleHosts : LifecycleHosts
{
    private readonly PostgresServerFixture _postgres = new();

    protected override Task StartStoreAsync() => _postgres.InitializeAsync();

    protected override Task StopStoreAsync() => _postgres.DisposeAsync();

    protected override string[] StoreArguments(string prefix) => ["--Store", "postgres", "--Postgres", _postgres.ConnectionString, "--Prefix", prefix + "_", "--CleanupSeconds", "1"];
}

/// <summary>
/// Session lifecycle events across processes: what one node causes (created, signed in, signed out, revoked) and what the
/// store sees (expired) reach both nodes with every-node delivery and exactly one with one-node delivery, by handle.
/// </summary>
public abstract class LifecycleEventTests(LifecycleHosts hosts)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    /// <summary>How long a one-node test watches for a second delivery of an event already handled.</summary>
    private static readonly TimeSpan QuietWindow = TimeSpan.FromSeconds(2);

    [Fact]
    public async Task Sign_in_and_sign_out_on_different_nodes_reach_every_node()
    {
        var (a, b) = (hosts.EveryNode[0], hosts.EveryNode[1]);
        var browser = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(a, "/signin/ada")).Status);
        var handle = await HandleAsync(browser, b);
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(b, "/signout")).Status);

        string[] expected = [$"Created||{handle}", $"SignedIn||{handle}", $"Ended|SignedOut|{handle}"];
        foreach (var host in hosts.EveryNode)
        {
            await UntilAsync(async () => expected.All((await EventsAsync(host)).Select(WithoutId).Contains), $"{host.Address} has {string.Join(", ", expected)}");
        }

        // One event, one id: both nodes received the same events, not copies made per node.
        var ids = (await EventsAsync(a)).Where(e => e.EndsWith(handle, StringComparison.Ordinal)).Select(Id).Order().ToArray();
        Assert.Equal(ids, (await EventsAsync(b)).Where(e => e.EndsWith(handle, StringComparison.Ordinal)).Select(Id).Order());
    }

    [Fact]
    public async Task Revocation_reaches_every_node()
    {
        var (a, b) = (hosts.EveryNode[0], hosts.EveryNode[1]);
        var phone = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await phone.PostAsync(a, "/signin/rory")).Status);
        var handle = await HandleAsync(phone, a);
        Assert.Equal((HttpStatusCode.OK, "1"), await new Browser().PostAsync(b, "/revoke-all/rory"));

        foreach (var host in hosts.EveryNode)
        {
            await UntilAsync(async () => (await EventsAsync(host)).Select(WithoutId).Contains($"Ended|Revoked|{handle}"), $"{host.Address} has the revocation");
        }
    }

    [Fact]
    public async Task An_expiry_reaches_every_node()
    {
        var browser = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(hosts.EveryNode[0], "/signin/ivy")).Status);
        var handle = await HandleAsync(browser, hosts.EveryNode[1]);

        // Nobody touches the session: it idles out after LifecycleHosts.IdleSeconds, and the store reports it.
        foreach (var host in hosts.EveryNode)
        {
            await UntilAsync(async () => (await EventsAsync(host)).Select(WithoutId).Contains($"Ended|Expired|{handle}"), $"{host.Address} has the expiry");
        }
    }

    [Fact]
    public async Task With_one_node_delivery_each_event_is_handled_by_exactly_one_node_expiry_included()
    {
        var (a, b) = (hosts.OneNode[0], hosts.OneNode[1]);
        var browser = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(a, "/signin/otto")).Status);
        var handle = await HandleAsync(browser, b);
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(b, "/signout")).Status);
        var other = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await other.PostAsync(b, "/signin/una")).Status);
        var expiring = await HandleAsync(other, a);

        string[] expected = [$"Created||{handle}", $"SignedIn||{handle}", $"Ended|SignedOut|{handle}", $"Ended|Expired|{expiring}"];
        await UntilAsync(async () => expected.All((await BothAsync()).Select(WithoutId).Contains), $"one of the nodes has {string.Join(", ", expected)}");
        await Task.Delay(QuietWindow);

        var handled = (await BothAsync()).Where(e => e.EndsWith(handle, StringComparison.Ordinal) || e.EndsWith(expiring, StringComparison.Ordinal)).ToArray();
        Assert.All(handled.GroupBy(WithoutId), g => Assert.Single(g));
        Assert.All(handled.GroupBy(Id), g => Assert.Single(g));

        async Task<string[]> BothAsync() => [.. await EventsAsync(a), .. await EventsAsync(b)];
    }

    private static async Task<string> HandleAsync(Browser browser, AppHost host)
    {
        var (status, handle) = await browser.GetAsync(host, "/my-handle");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(SessionHandle.IsWellFormed(handle), handle);
        return handle;
    }

    private static async Task<string[]> EventsAsync(AppHost host)
    {
        var (status, body) = await new Browser().GetAsync(host, "/events");
        Assert.Equal(HttpStatusCode.OK, status);
        return body.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    private static string Id(string line) => line[..line.IndexOf('|', StringComparison.Ordinal)];

    private static string WithoutId(string line) => line[(line.IndexOf('|', StringComparison.Ordinal) + 1)..];

    private static Task UntilAsync(Func<Task<bool>> condition, string what) => ServerProcess.UntilAsync(condition, Deadline, what);
}

/// <summary>Over redis-server.</summary>
public sealed class RedisLifecycleEventTests(RedisLifecycleHosts hosts) : LifecycleEventTests(hosts), IClassFixture<RedisLifecycleHosts>;

/// <summary>Over PostgreSQL.</summary>
public sealed class PostgresLifecycleEventTests(PostgresLifecycleHosts hosts) : LifecycleEventTests(hosts), IClassFixture<PostgresLifecycleHosts>;

/// <summary>A Redis Cluster (expiries come from the node that holds each key); the app's connection may CONFIG SET every node.</summary>
public sealed class RedisClusterLifecycleHosts : LifecycleHosts
{
    private readonly RedisClusterFixture _cluster = new();

    protected override Task StartStoreAsync() => _cluster.InitializeAsync();

    protected override Task StopStoreAsync() => _cluster.DisposeAsync();

    protected override string[] StoreArguments(string prefix) => ["--Store", "redis", "--Redis", _cluster.Configuration + ",allowAdmin=true", "--Prefix", prefix + ":"];
}

/// <summary>A Sentinel deployment (primary, replica, sentinels); the app connects through the sentinels.</summary>
public sealed class RedisSentinelLifecycleHosts : LifecycleHosts
{
    private readonly RedisSentinelFixture _sentinel = new();

    protected override Task StartStoreAsync() => _sentinel.InitializeAsync();

    protected override Task StopStoreAsync() => _sentinel.DisposeAsync();

    protected override string[] StoreArguments(string prefix) => ["--Store", "redis", "--Redis", _sentinel.Configuration + ",allowAdmin=true", "--Prefix", prefix + ":"];
}

/// <summary>Over Redis Cluster.</summary>
public sealed class RedisClusterLifecycleEventTests(RedisClusterLifecycleHosts hosts) : LifecycleEventTests(hosts), IClassFixture<RedisClusterLifecycleHosts>;

/// <summary>Over Redis Sentinel.</summary>
public sealed class RedisSentinelLifecycleEventTests(RedisSentinelLifecycleHosts hosts) : LifecycleEventTests(hosts), IClassFixture<RedisSentinelLifecycleHosts>;
