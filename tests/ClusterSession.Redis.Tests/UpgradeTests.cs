using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using ClusterSession.Testing.Servers;
using StackExchange.Redis;
using Xunit;

namespace ClusterSession.Redis.Tests;

/// <summary>
/// Layout 3 and the upgrade from layout 2 (docs/redis-data-model.md, "Layouts"), on real servers. A node of the previous
/// release is simulated by writing exactly what v0.2.0-preview.1 writes (its session hash under <c>P s:{id}</c>, its
/// index <c>P p:name</c> listing ids); the process-level test of the previous release itself lives in
/// tests/ClusterSession.Upgrade.Tests.
/// </summary>
public abstract class UpgradeTests : IAsyncLifetime
{
    private static readonly TimeSpan Refresh = TimeSpan.FromMilliseconds(200);
    private readonly string _prefix = TestStores.UniquePrefix();
    private readonly List<RedisSessionStore> _stores = [];
    private ConnectionMultiplexer _multiplexer = null!;

    protected abstract string Configuration { get; }

    private IDatabase Db => _multiplexer.GetDatabase();

    public async Task InitializeAsync() => _multiplexer = await TestStores.MultiplexerAsync(Configuration);

    public async Task DisposeAsync()
    {
        foreach (var store in _stores)
        {
            await store.DisposeAsync();
        }
    }

    [Fact]
    public async Task Fresh_store_starts_on_layout_3_and_no_key_holds_an_id_or_a_principal_name()
    {
        var store = Node();
        const string principal = "alice@example.com";
        var first = New(principal);
        var second = New(principal);
        Assert.True(await store.CreateAsync(first));
        Assert.True(await store.CreateAsync(second));
        Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(first.Id!, new Dictionary<string, byte[]> { ["cart"] = "2"u8.ToArray() }, [])));
        var renewed = SessionId.Create();
        Assert.True(await store.ChangeIdAsync(second.Id!, renewed));
        Assert.Equal(SessionAdmissionStatus.Admitted, (await store.AdmitAsync(first.Id!, principal, 5, SessionCapPolicy.EndOldestSession)).Status);
        Assert.Equal(2, (await store.FindByPrincipalAsync(principal)).Count);

        Assert.Equal(RedisLayout.Current, store.Layout);
        Assert.False(store.WritesPreviousLayout);
        string[] secrets = [first.Id!, second.Id!, renewed];
        var keys = await AllKeysAsync();
        Assert.Contains(keys, k => k.StartsWith(_prefix + "s3:{", StringComparison.Ordinal));
        Assert.Contains(keys, k => k.StartsWith(_prefix + "u:", StringComparison.Ordinal));
        foreach (var key in keys)
        {
            Assert.DoesNotContain(principal, key, StringComparison.Ordinal);
            Assert.All(secrets, id => Assert.DoesNotContain(id, key, StringComparison.Ordinal));
            var values = await Db.KeyTypeAsync(key) switch
            {
                RedisType.Hash => (await Db.HashGetAllAsync(key)).SelectMany(e => new[] { (string)e.Name!, (string)e.Value! }),
                RedisType.SortedSet => (await Db.SortedSetRangeByRankAsync(key)).Select(v => (string)v!),
                _ => [(string?)await Db.StringGetAsync(key) ?? string.Empty],
            };
            Assert.All(values, value => Assert.All(secrets, id => Assert.DoesNotContain(id, value, StringComparison.Ordinal)));
        }
    }

    [Fact]
    public async Task Store_that_finds_previous_layout_sessions_writes_the_previous_layout()
    {
        var old = SessionId.Create();
        await WritePreviousReleaseSessionAsync(old, "bob", createdMs: NowMs() - 60_000);
        var store = Node();

        Assert.NotNull(await store.LoadAsync(old));
        Assert.True(store.WritesPreviousLayout);
        var created = New("bob");
        Assert.True(await store.CreateAsync(created));
        Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(old, new Dictionary<string, byte[]> { ["cart"] = "9"u8.ToArray() }, [])));

        // What the previous release reads: its keys, its index of ids, and the same hash fields.
        Assert.True(await Db.KeyExistsAsync(_prefix + "s:{" + created.Id + "}"));
        Assert.Equal("9", (string?)await Db.HashGetAsync(_prefix + "s:{" + old + "}", "@cart"));
        Assert.NotNull(await Db.SortedSetScoreAsync(_prefix + "p:bob", created.Id));
        Assert.DoesNotContain(await AllKeysAsync(), k => k.StartsWith(_prefix + "s3:", StringComparison.Ordinal));
        Assert.Equal(
            new HashSet<string> { SessionHandle.FromId(old), SessionHandle.FromId(created.Id!) },
            (await store.FindByPrincipalAsync("bob")).Select(s => s.Handle).ToHashSet());
        Assert.Equal(2, await store.CountAsync());
    }

    [Fact]
    public async Task Upgrade_under_concurrent_load_loses_no_write_and_no_session_and_twice_has_nothing_to_do()
    {
        const int Sessions = 40;
        var ids = new List<string>();
        for (var i = 0; i < Sessions; i++)
        {
            var id = SessionId.Create();
            ids.Add(id);
            await WritePreviousReleaseSessionAsync(id, "user-" + (i % 4), createdMs: NowMs() - 60_000);
        }

        var a = Node();
        var b = Node();
        var operatorTool = Node();
        Assert.NotNull(await a.LoadAsync(ids[0]));
        Assert.NotNull(await b.LoadAsync(ids[0]));
        Assert.True(a.WritesPreviousLayout && b.WritesPreviousLayout);

        var increments = new ConcurrentDictionary<string, int>();
        var failures = new ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource();
        var load = Enumerable.Range(0, 8).Select(worker => Task.Run(async () =>
        {
            var store = worker % 2 == 0 ? a : b;
            var random = new Random(worker);
            while (!stop.IsCancellationRequested)
            {
                var id = ids[random.Next(ids.Count)];
                var loaded = await store.LoadAsync(id);
                if (loaded is null)
                {
                    failures.Enqueue("a session was not found");
                    continue;
                }

                var current = loaded.Attributes.TryGetValue("n", out var bytes) ? (byte[]?)bytes : null;
                var next = (current is null ? 0 : int.Parse(Encoding.ASCII.GetString(current), CultureInfo.InvariantCulture)) + 1;
                ReadOnlyMemory<byte>? expected = current is null ? (ReadOnlyMemory<byte>?)null : current;
                var result = await store.CompareAndSetAttributeAsync(id, "n", expected, Encoding.ASCII.GetBytes(next.ToString(CultureInfo.InvariantCulture)));
                if (result.Status == AttributeCasStatus.Succeeded)
                {
                    increments.AddOrUpdate(id, 1, (_, n) => n + 1);
                }
                else if (result.Status == AttributeCasStatus.Gone)
                {
                    failures.Enqueue("a compare-and-set found the session gone");
                }
            }
        })).ToArray();

        await ServerProcess.UntilAsync(() => Task.FromResult(Running(load) && increments.Values.Sum() > 200), TimeSpan.FromSeconds(30), "the load is running");
        var upgraded = await operatorTool.UpgradeAsync();
        await ServerProcess.UntilAsync(() => Task.FromResult(Running(load) && increments.Values.Sum() > 400), TimeSpan.FromSeconds(30), "the load runs on after the upgrade");
        await stop.CancelAsync();
        await Task.WhenAll(load);

        Assert.True(upgraded.Status == SessionStoreUpgradeStatus.Upgraded, upgraded.Message);
        Assert.Empty(failures);
        foreach (var id in ids)
        {
            var session = await a.LoadAsync(id);
            Assert.NotNull(session);
            var expected = increments.GetValueOrDefault(id);
            Assert.Equal(expected, expected == 0 ? 0 : int.Parse(Encoding.ASCII.GetString(session.Attributes["n"]), CultureInfo.InvariantCulture));
        }

        var keys = await AllKeysAsync();
        Assert.DoesNotContain(keys, k => k.StartsWith(_prefix + "s:{", StringComparison.Ordinal) || k.StartsWith(_prefix + "p:", StringComparison.Ordinal));
        Assert.Equal(Sessions, await operatorTool.CountAsync());
        Assert.Equal(Sessions / 4, (await a.FindByPrincipalAsync("user-1")).Count);
        Assert.Equal(RedisLayout.Current, operatorTool.Layout);

        var again = await Node().UpgradeAsync();
        Assert.Equal(SessionStoreUpgradeStatus.NothingToDo, again.Status);
        Assert.Equal(0, again.SessionsMoved);
    }

    [Fact]
    public async Task Upgrade_is_refused_while_a_node_of_the_previous_release_creates_sessions()
    {
        await WritePreviousReleaseSessionAsync(SessionId.Create(), null, createdMs: NowMs() - 60_000);
        var current = Node();
        Assert.True(await current.CreateAsync(New("carol")));
        Assert.True(current.WritesPreviousLayout);

        // A session the previous release creates now: dated to the millisecond, where current nodes round to the second.
        var now = NowMs() + 2_000;
        await WritePreviousReleaseSessionAsync(SessionId.Create(), "carol", createdMs: now % 1000 == 0 ? now + 1 : now);
        var result = await Node().UpgradeAsync();

        Assert.Equal(SessionStoreUpgradeStatus.Refused, result.Status);
        Assert.StartsWith("Refused: 1 session(s)", result.Message, StringComparison.Ordinal);
        Assert.Equal(0, result.SessionsMoved);
        await current.RefreshLayoutForTestsAsync();
        Assert.True(current.WritesPreviousLayout);
        Assert.DoesNotContain(await AllKeysAsync(), k => k.StartsWith(_prefix + "s3:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_node_on_layout_2_switches_to_layout_3_by_itself_after_another_nodes_upgrade()
    {
        var old = SessionId.Create();
        await WritePreviousReleaseSessionAsync(old, "dave", createdMs: NowMs() - 60_000);
        var node = Node();
        Assert.NotNull(await node.LoadAsync(old));
        Assert.True(node.WritesPreviousLayout);

        Assert.Equal(SessionStoreUpgradeStatus.Upgraded, (await Node().UpgradeAsync()).Status);
        await ServerProcess.UntilAsync(() => Task.FromResult(node.Layout == RedisLayout.Current), TimeSpan.FromSeconds(10), "the node reads the marker again");

        Assert.False(node.WritesPreviousLayout);
        Assert.NotNull(await node.LoadAsync(old));
        var created = New("dave");
        Assert.True(await node.CreateAsync(created));
        Assert.False(await Db.KeyExistsAsync(_prefix + "s:{" + created.Id + "}"));
        Assert.Equal(2, (await node.FindByPrincipalAsync("dave")).Count);
    }

    // A worker that failed ends the wait with its exception instead of a timeout.
    private static bool Running(Task[] workers)
        => workers.FirstOrDefault(w => w.IsFaulted) is { } failed ? throw failed.Exception!.InnerException! : true;

    private static long NowMs() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private static SessionSnapshot New(string? principal)
        => SessionSnapshot.CreateNew(SessionId.Create(), DateTimeOffset.UtcNow, TimeSpan.FromMinutes(20), TimeSpan.FromHours(8), new Dictionary<string, byte[]> { ["seed"] = "1"u8.ToArray() }, principal);

    /// <summary>A store on the system clock (Redis TIME), as in production, refreshing its layout every 200 ms.</summary>
    private RedisSessionStore Node()
    {
        var store = new RedisSessionStore(_multiplexer, new RedisSessionStoreOptions { KeyPrefix = _prefix }) { LayoutRefreshInterval = Refresh };
        _stores.Add(store);
        return store;
    }

    /// <summary>What v0.2.0-preview.1 writes for a session (RedisScripts.Create and Index at commit 984df1a).</summary>
    private async Task WritePreviousReleaseSessionAsync(string id, string? principal, long createdMs)
    {
        var idle = (long)TimeSpan.FromMinutes(20).TotalMilliseconds;
        var lifetime = (long)TimeSpan.FromHours(8).TotalMilliseconds;
        RedisKey key = _prefix + "s:{" + id + "}";
        var meta = string.Create(CultureInfo.InvariantCulture, $"{createdMs},0,{idle},{lifetime},0") + (principal is null ? string.Empty : "," + principal);
        await Db.HashSetAsync(key, [new("#", meta), new("@seed", "1")]);
        await Db.KeyExpireAsync(key, TimeSpan.FromMilliseconds(createdMs + idle - NowMs()));
        if (principal is not null)
        {
            RedisKey index = _prefix + "p:" + principal;
            await Db.SortedSetAddAsync(index, id, createdMs + lifetime);
            await Db.KeyExpireAsync(index, TimeSpan.FromMilliseconds(lifetime));
        }
    }

    private async Task<List<string>> AllKeysAsync()
    {
        var keys = new List<string>();
        foreach (var server in _multiplexer.GetServers().Where(s => !s.IsReplica && s.IsConnected))
        {
            await foreach (var key in server.KeysAsync(pattern: _prefix + "*"))
            {
                keys.Add(key!);
            }
        }

        return keys;
    }
}

[Collection(StandaloneRedis.Name)]
public sealed class StandaloneUpgradeTests(RedisServerFixture server) : UpgradeTests
{
    protected override string Configuration => server.Configuration;
}

[Collection(ClusterRedis.Name)]
public sealed class ClusterUpgradeTests(RedisClusterFixture cluster) : UpgradeTests
{
    protected override string Configuration => cluster.Configuration;
}
