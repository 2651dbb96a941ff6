using System.Text;
using ClusterSession.Testing.Servers;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;
using Xunit;

namespace ClusterSession.Redis.Tests;

/// <summary>
/// Redis-specific behaviour (data layout, TTLs, the principal index, id change races), run against
/// every server kind. The shared contract is covered by the conformance suite.
/// </summary>
public abstract class RedisStoreBehaviourTests : IAsyncLifetime
{
    private static readonly TimeSpan Idle = TimeSpan.FromMinutes(20);
    private static readonly TimeSpan Lifetime = TimeSpan.FromHours(8);
    private readonly string _prefix = TestStores.UniquePrefix();
    private RedisSessionStore? _store;
    private IDatabase? _db;

    protected abstract string Configuration { get; }

    private FakeTimeProvider Time { get; } = TestStores.NewClock();

    private RedisSessionStore Store => _store!;

    private IDatabase Db => _db!;

    public async Task InitializeAsync()
    {
        _store = await TestStores.CreateAsync(Configuration, Time, _prefix);
        _db = (await TestStores.MultiplexerAsync(Configuration)).GetDatabase();
    }

    public Task DisposeAsync() => _store!.DisposeAsync().AsTask();

    [Fact]
    public async Task Create_then_load_returns_attributes_principal_and_metadata()
    {
        var session = New(principal: "alice", ("cart", "[1,2]"), ("theme", "dark"));
        Assert.True(await Store.CreateAsync(session));
        Assert.False(await Store.CreateAsync(session));

        var loaded = await Store.LoadAsync(session.Id!);
        Assert.NotNull(loaded);
        Assert.Equal("alice", loaded.Principal);
        Assert.Equal(session.CreatedAt.ToUnixTimeMilliseconds(), loaded.CreatedAt.ToUnixTimeMilliseconds());
        Assert.Equal(Idle, loaded.IdleTimeout);
        Assert.Equal(session.AbsoluteExpiresAt.ToUnixTimeMilliseconds(), loaded.AbsoluteExpiresAt.ToUnixTimeMilliseconds());
        Assert.Equal("[1,2]", Encoding.UTF8.GetString(loaded.Attributes["cart"]));
        Assert.Equal(2, loaded.Attributes.Count);
    }

    [Fact]
    public async Task Saves_racing_deletes_never_bring_a_session_back()
    {
        var sessions = Enumerable.Range(0, 100).Select(_ => New(null, ("a", "1"))).ToList();
        foreach (var session in sessions)
        {
            await Store.CreateAsync(session);
            await Store.LoadAsync(session.Id!);
        }

        var changes = new Dictionary<string, byte[]> { ["a"] = "2"u8.ToArray(), ["b"] = "3"u8.ToArray() };
        await Task.WhenAll(sessions.Select(session => Task.WhenAll(
            Store.SaveAsync(new SessionChanges(session.Id!, changes)).AsTask(),
            Store.DeleteAsync(session.Id!).AsTask(),
            Store.LoadAsync(session.Id!).AsTask(),
            Store.SaveAsync(new SessionChanges(session.Id!, changes)).AsTask())));

        foreach (var session in sessions)
        {
            Assert.Null(await Store.LoadAsync(session.Id!));
            Assert.False(await Db.KeyExistsAsync(Key(session.Id!)));
            Assert.Equal(SessionSaveResult.Gone, await Store.SaveAsync(new SessionChanges(session.Id!, changes)));
        }
    }

    [Fact]
    public async Task A_load_whose_touch_is_due_refreshes_last_access_and_the_ttl_once_and_the_next_load_only_reads()
    {
        var session = New(null, ("a", "1"));
        await Store.CreateAsync(session);
        var key = Key(session.Id!);
        Time.Advance(TimeSpan.FromMinutes(3));

        var touched = await Store.LoadAsync(session.Id!);
        var ttlAfterTouch = await Db.KeyTimeToLiveAsync(key);
        var hashAfterTouch = await Db.HashGetAsync(key, "#");
        Time.Advance(TimeSpan.FromMinutes(1));
        var read = await Store.LoadAsync(session.Id!);

        Assert.Equal(Time.GetUtcNow().AddMinutes(-1).ToUnixTimeMilliseconds(), touched!.LastAccessedAt.ToUnixTimeMilliseconds());
        Assert.InRange(ttlAfterTouch!.Value, Idle - TimeSpan.FromSeconds(5), Idle);
        Assert.Equal(touched.LastAccessedAt, read!.LastAccessedAt);
        Assert.Equal(hashAfterTouch, await Db.HashGetAsync(key, "#"));
    }

    [Fact]
    public async Task Session_is_one_hash_with_a_server_ttl_of_the_idle_timeout()
    {
        var session = New(null, ("a", "1"));
        await Store.CreateAsync(session);

        var key = Key(session.Id!);
        Assert.Equal(RedisType.Hash, await Db.KeyTypeAsync(key));
        var ttl = await Db.KeyTimeToLiveAsync(key);
        Assert.NotNull(ttl);
        Assert.InRange(ttl.Value, Idle - TimeSpan.FromMinutes(1), Idle);
        Assert.True(await Db.HashExistsAsync(key, "@a"));
    }

    [Fact]
    public async Task Removing_an_attribute_deletes_its_field_and_leaves_the_others()
    {
        var session = New(null, ("keep", "1"), ("drop", "2"));
        await Store.CreateAsync(session);

        var result = await Store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["new"] = "3"u8.ToArray() }, ["drop"]));

        Assert.Equal(SessionSaveResult.Saved, result);
        Assert.False(await Db.HashExistsAsync(Key(session.Id!), "@drop"));
        var loaded = await Store.LoadAsync(session.Id!);
        Assert.Equal(["keep", "new"], loaded!.Attributes.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(1, loaded.Version);
    }

    [Fact]
    public async Task Save_after_delete_returns_gone_and_recreates_nothing()
    {
        var session = New(null, ("a", "1"));
        await Store.CreateAsync(session);
        Assert.True(await Store.DeleteAsync(session.Id!));

        var result = await Store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["a"] = "2"u8.ToArray() }));

        Assert.Equal(SessionSaveResult.Gone, result);
        Assert.False(await Db.KeyExistsAsync(Key(session.Id!)));
        Assert.False(await Store.DeleteAsync(session.Id!));
    }

    [Fact]
    public async Task Save_after_idle_expiry_by_the_store_clock_returns_gone_and_removes_the_key()
    {
        var session = New(null, ("a", "1"));
        await Store.CreateAsync(session);
        Time.Advance(Idle + TimeSpan.FromSeconds(1));

        Assert.Equal(SessionSaveResult.Gone, await Store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["a"] = "2"u8.ToArray() })));
        Assert.False(await Db.KeyExistsAsync(Key(session.Id!)));
    }

    [Fact]
    public async Task Load_refreshes_access_and_ttl_only_after_the_touch_interval()
    {
        var session = New(null);
        await Store.CreateAsync(session);

        Time.Advance(TimeSpan.FromMinutes(1)); // under 10 % of 20 minutes: no refresh
        Assert.Equal(session.LastAccessedAt.ToUnixTimeMilliseconds(), (await Store.LoadAsync(session.Id!))!.LastAccessedAt.ToUnixTimeMilliseconds());

        Time.Advance(TimeSpan.FromMinutes(2)); // 3 minutes since the last refresh: refresh
        var touched = await Store.LoadAsync(session.Id!);
        Assert.Equal(Time.GetUtcNow().ToUnixTimeMilliseconds(), touched!.LastAccessedAt.ToUnixTimeMilliseconds());

        Time.Advance(Idle - TimeSpan.FromMinutes(1)); // alive only thanks to the refresh
        Assert.NotNull(await Store.LoadAsync(session.Id!));
    }

    [Fact]
    public async Task Attribute_limit_is_enforced_by_the_save_script()
    {
        var store = await TestStores.CreateAsync(Configuration, Time, _prefix, o => o.Limits = new SessionLimits { MaxAttributes = 2 });
        var session = New(null, ("a", "1"), ("b", "2"));
        await store.CreateAsync(session);

        await Assert.ThrowsAsync<SessionLimitExceededException>(async () =>
            await store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["c"] = "3"u8.ToArray() })));
        Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["c"] = "3"u8.ToArray() }, ["a"])));
        await Assert.ThrowsAsync<SessionLimitExceededException>(async () =>
            await store.CompareAndSetAttributeAsync(session.Id!, "d", null, "4"u8.ToArray()));
    }

    [Fact]
    public async Task Change_id_moves_everything_and_the_old_id_is_gone_without_rename()
    {
        var session = New("bob", ("a", "1"));
        await Store.CreateAsync(session);
        var newId = SessionId.Create();

        Assert.True(await Store.ChangeIdAsync(session.Id!, newId));

        Assert.Null(await Store.LoadAsync(session.Id!));
        Assert.False(await Db.KeyExistsAsync(Key(session.Id!)));
        var moved = await Store.LoadAsync(newId);
        Assert.Equal("1", Encoding.UTF8.GetString(moved!.Attributes["a"]));
        Assert.Equal("bob", moved.Principal);
        Assert.False(await Db.HashExistsAsync(Key(newId), "#m"));
        Assert.Equal(SessionSaveResult.Gone, await Store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["a"] = "2"u8.ToArray() })));
        Assert.False(await Store.ChangeIdAsync(session.Id!, SessionId.Create()));
    }

    [Fact]
    public async Task Change_id_to_a_taken_id_fails_and_leaves_the_old_session_usable()
    {
        var first = New(null, ("a", "1"));
        var second = New(null, ("b", "2"));
        await Store.CreateAsync(first);
        await Store.CreateAsync(second);

        Assert.False(await Store.ChangeIdAsync(first.Id!, second.Id!));

        Assert.Equal(SessionSaveResult.Saved, await Store.SaveAsync(new SessionChanges(first.Id!, new Dictionary<string, byte[]> { ["a"] = "3"u8.ToArray() })));
        Assert.Equal("2", Encoding.UTF8.GetString((await Store.LoadAsync(second.Id!))!.Attributes["b"]));
    }

    [Fact]
    public async Task Saves_racing_an_id_change_are_carried_over_or_return_gone()
    {
        for (var round = 0; round < 5; round++)
        {
            var session = New(null);
            await Store.CreateAsync(session);
            var newId = SessionId.Create();
            using var start = new ManualResetEventSlim();
            var saves = Enumerable.Range(0, 16).Select(i => Task.Run(async () =>
            {
                start.Wait();
                var name = "k" + i;
                return (name, await Store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { [name] = [1] })));
            })).ToArray();
            var move = Task.Run(async () =>
            {
                start.Wait();
                return await Store.ChangeIdAsync(session.Id!, newId);
            });
            start.Set();
            var results = await Task.WhenAll(saves);

            Assert.True(await move);
            var moved = await Store.LoadAsync(newId);
            foreach (var (name, result) in results)
            {
                Assert.Equal(result == SessionSaveResult.Saved, moved!.Attributes.ContainsKey(name));
            }

            Assert.False(await Db.KeyExistsAsync(Key(session.Id!)));
        }
    }

    [Fact]
    public async Task Principal_index_follows_id_change_principal_change_logout_and_expiry()
    {
        var principal = "carol-" + Guid.NewGuid().ToString("N");
        var index = (RedisKey)(_prefix + "u:" + SessionHandle.FromPrincipal(principal));
        var first = New(principal);
        var second = New(principal);
        await Store.CreateAsync(first);
        await Store.CreateAsync(second);
        Assert.Equal(Ids(first.Id!, second.Id!), Ids(await Store.FindByPrincipalAsync(principal)));
        var ttl = await Db.KeyTimeToLiveAsync(index);

        // Listed before the session exists, the entry is scored the lifetime plus the operation's deadline
        // (OperationTimeout, 5 s by default) past the store's clock: never before the session's own expiry.
        Assert.InRange(ttl!.Value, Lifetime - TimeSpan.FromMinutes(1), Lifetime + new RedisSessionStoreOptions().OperationTimeout);

        var renewed = SessionId.Create();
        await Store.ChangeIdAsync(first.Id!, renewed);
        Assert.Equal(Ids(renewed, second.Id!), Ids(await Store.FindByPrincipalAsync(principal)));
        Assert.Null(await Db.SortedSetScoreAsync(index, RedisSessionRef.FromId(first.Id!).Member));

        await Store.SaveAsync(new SessionChanges(second.Id!, principalChanged: true, principal: "dave-" + principal));
        Assert.Equal(Ids(renewed), Ids(await Store.FindByPrincipalAsync(principal)));
        Assert.Equal(Ids(second.Id!), Ids(await Store.FindByPrincipalAsync("dave-" + principal)));

        await Store.DeleteAsync(renewed);
        Assert.Empty(await Store.FindByPrincipalAsync(principal));
        Assert.False(await Db.KeyExistsAsync(index));

        Time.Advance(Idle + TimeSpan.FromSeconds(1));
        Assert.Empty(await Store.FindByPrincipalAsync("dave-" + principal));
        Assert.False(await Db.KeyExistsAsync(_prefix + "u:" + SessionHandle.FromPrincipal("dave-" + principal)));
    }

    [Fact]
    public async Task Count_sees_only_this_prefix_and_only_live_sessions()
    {
        var other = await TestStores.CreateAsync(Configuration, Time);
        await other.CreateAsync(New(null));
        for (var i = 0; i < 25; i++)
        {
            await Store.CreateAsync(New(null));
        }

        var deleted = New(null);
        await Store.CreateAsync(deleted);
        await Store.DeleteAsync(deleted.Id!);

        Assert.Equal(25, await Store.CountAsync());
        Time.Advance(Idle + TimeSpan.FromSeconds(1));
        Assert.Equal(0, await Store.CountAsync());
    }

    [Fact]
    public async Task Parallel_atomic_updates_of_one_attribute_keep_every_increment()
    {
        var session = New(null);
        await Store.CreateAsync(session);

        await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => Task.Run(async () =>
            await Store.UpdateAttributeAsync(session.Id!, "n", null, current => BitConverter.GetBytes((current is null ? 0 : BitConverter.ToInt32(current)) + 1)))));

        Assert.Equal(40, BitConverter.ToInt32((await Store.LoadAsync(session.Id!))!.Attributes["n"]));
    }

    [Fact]
    public async Task Atomic_updates_from_several_app_instances_keep_every_increment()
    {
        // One connection per app instance: a server that runs scripts without key locks (Garnet
        // without --lua-transaction-mode) interleaves compare-and-sets only across connections.
        var session = New(null);
        await Store.CreateAsync(session);
        var instances = new List<RedisSessionStore>();
        for (var i = 0; i < 4; i++)
        {
            instances.Add(new RedisSessionStore(new RedisSessionStoreOptions { Configuration = Configuration, KeyPrefix = _prefix }, Time));
        }

        try
        {
            const int PerInstance = 50;
            await Task.WhenAll(instances.SelectMany(store => Enumerable.Range(0, PerInstance).Select(_ => Task.Run(async () =>
                await store.UpdateAttributeAsync(session.Id!, "n", null, current => BitConverter.GetBytes((current is null ? 0 : BitConverter.ToInt32(current)) + 1))))));

            Assert.Equal(instances.Count * PerInstance, BitConverter.ToInt32((await Store.LoadAsync(session.Id!))!.Attributes["n"]));
        }
        finally
        {
            foreach (var store in instances)
            {
                await store.DisposeAsync();
            }
        }
    }

    // The store keeps no ids: sessions found by principal are compared by their handles.
    private static HashSet<string> Ids(params string[] ids) => [.. ids.Select(SessionHandle.FromId)];

    private static HashSet<string> Ids(IEnumerable<SessionSnapshot> sessions) => [.. sessions.Select(s => s.Handle)];

    // Layout 3: the handle, after a slot tag that puts the key in the slot the previous layout's "s:{id}" had.
    private RedisKey Key(string id) => _prefix + "s3:{" + RedisSlotTags.TagOf(id) + "}" + SessionHandle.FromId(id);

    /// <summary>
    /// Rewrites the last access in the metadata field ('#' = "created,access,idle,lifetime,version[,principal]",
    /// access and lifetime in ms after created), leaving the TTL alone. An access before creation moves the
    /// creation back with it and lengthens the lifetime by as much, so the absolute expiry stays where it was.
    /// </summary>
    private async Task SetLastAccessAsync(RedisKey key, long accessMs)
    {
        var parts = ((string)(await Db.HashGetAsync(key, "#"))!).Split(',', 5);
        var created = long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture);
        var absolute = created + long.Parse(parts[3], System.Globalization.CultureInfo.InvariantCulture);
        created = Math.Min(created, accessMs);
        await Db.HashSetAsync(key, "#", string.Join(',', created, accessMs - created, parts[2], absolute - created, parts[4]));
    }

    [Fact]
    public async Task On_the_system_clock_the_store_dates_and_expires_sessions_by_its_own_clock_not_the_callers()
    {
        // The production path: no test clock, so every script reads the server's TIME. A caller 25 minutes
        // ahead dates its new session 25 minutes late; the store dates it on its own clock instead.
        await using var store = await TestStores.CreateAsync(Configuration, TimeProvider.System, _prefix);
        var principal = "skewed-" + Guid.NewGuid().ToString("N");
        var ahead = DateTimeOffset.UtcNow + TimeSpan.FromMinutes(25);
        var session = SessionSnapshot.CreateNew(SessionId.Create(), ahead, Idle, Lifetime, new Dictionary<string, byte[]>(StringComparer.Ordinal) { ["cart"] = "1"u8.ToArray() }, principal);
        Assert.True(await store.CreateAsync(session));

        var loaded = await store.LoadAsync(session.Id!);
        Assert.NotNull(loaded);
        Assert.InRange(loaded.CreatedAt, DateTimeOffset.UtcNow - TimeSpan.FromMinutes(1), DateTimeOffset.UtcNow + TimeSpan.FromMinutes(1));
        Assert.Equal(loaded.CreatedAt + Lifetime, loaded.AbsoluteExpiresAt);
        Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["cart"] = "2"u8.ToArray() }, [])));
        Assert.Equal(AttributeCasResult.Succeeded, await store.CompareAndSetAttributeAsync(session.Id!, "cart", "2"u8.ToArray(), "3"u8.ToArray()));
        var renewed = SessionId.Create();
        Assert.True(await store.ChangeIdAsync(session.Id!, renewed));
        Assert.Equal([SessionHandle.FromId(renewed)], (await store.FindByPrincipalAsync(principal)).Select(s => s.Handle));
        Assert.Equal(1, await store.CountAsync());

        // Idle for longer than the idle timeout by the server's clock, whatever the caller's says.
        var key = Key(renewed);
        var server = (await TestStores.MultiplexerAsync(Configuration)).GetServer((await Db.IdentifyEndpointAsync(key))!);
        var serverNow = new DateTimeOffset(DateTime.SpecifyKind(await server.TimeAsync(), DateTimeKind.Utc));
        await SetLastAccessAsync(key, (serverNow - Idle - TimeSpan.FromSeconds(1)).ToUnixTimeMilliseconds());
        Assert.Empty(await store.FindByPrincipalAsync(principal));
        Assert.Equal(0, await store.CountAsync());
        Assert.Null(await store.LoadAsync(renewed));
        Assert.False(await Db.KeyExistsAsync(key));
    }

    private SessionSnapshot New(string? principal, params (string Name, string Value)[] attributes)
        => SessionSnapshot.CreateNew(
            SessionId.Create(),
            Time.GetUtcNow(),
            Idle,
            Lifetime,
            attributes.ToDictionary(a => a.Name, a => Encoding.UTF8.GetBytes(a.Value), StringComparer.Ordinal),
            principal);
}

[Collection(StandaloneRedis.Name)]
public sealed class StandaloneRedisBehaviourTests(RedisServerFixture server) : RedisStoreBehaviourTests
{
    protected override string Configuration => server.Configuration;
}

[Collection(ClusterRedis.Name)]
public sealed class ClusterRedisBehaviourTests(RedisClusterFixture cluster) : RedisStoreBehaviourTests
{
    protected override string Configuration => cluster.Configuration;
}

[Collection(Garnet.Name)]
public sealed class GarnetBehaviourTests(GarnetServerFixture garnet) : RedisStoreBehaviourTests
{
    protected override string Configuration => garnet.Configuration;
}

