using System.Diagnostics;
using System.Globalization;
using ClusterSession.Testing;
using ClusterSession.Testing.Servers;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Xunit.Abstractions;
using static ClusterSession.Postgres.Tests.PostgresSessionStoreTests;

namespace ClusterSession.Postgres.Tests;

/// <summary>The whole store conformance suite with the near cache on (it serves every load it can).</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresNearCacheConformanceTests(PostgresTestServer server) : SessionStoreConformanceTests
{
    protected override async Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time)
    {
        var store = await server.CreateStoreAsync(time, unlogged: false, o =>
        {
            o.CleanupInterval = TimeSpan.FromMinutes(1);
            o.NearCache.Enabled = true;
        });

        // The listener sends a heartbeat as soon as it listens: the cache serves from the first test step on.
        await NearCacheNodes.UntilUsableAsync(store);
        return store;
    }

    protected override Task DisposeStoreAsync(ISessionStore store) => server.DropAsync((PostgresSessionStore)store);

    protected override ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure) => server.CreateStoreWithOptions(configure);
}

/// <summary>
/// Two nodes (two stores, each with its own data source, on the same tables) with the near cache on: what one node
/// writes, the other never reads stale; the listener's connection killed; round trips of cached reads.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresNearCacheTests(PostgresTestServer server, ITestOutputHelper output)
{
    private const int Rounds = 2000;
    private static readonly TimeSpan Idle = TimeSpan.FromMinutes(30);
    private static readonly TimeSpan Lifetime = TimeSpan.FromHours(8);

    public enum Change
    {
        Save,
        CompareAndSet,
        Delete,
        IdChange,
        RevokeByUser,
        CapEndsOldest,
    }

    [Theory]
    [InlineData(Change.Save)]
    [InlineData(Change.CompareAndSet)]
    [InlineData(Change.Delete)]
    [InlineData(Change.IdChange)]
    [InlineData(Change.RevokeByUser)]
    [InlineData(Change.CapEndsOldest)]
    public async Task A_change_acknowledged_on_one_node_reaches_the_other_within_the_propagation_window_and_is_never_lost(Change change)
    {
        await using var nodes = await NearCacheNodes.StartAsync(server);
        var (a, b) = (nodes.A, nodes.B);
        var staleAtOnce = 0;
        var held = 0;
        var delays = new List<double>(Rounds);
        var watch = Stopwatch.StartNew();
        var kept = NewSession(("n", "0"));
        Assert.True(await a.CreateAsync(kept));
        Assert.NotNull(await b.LoadAsync(kept.Id!));
        // The cap's admission is a heavier transaction (an advisory lock, a count and two writes): fewer rounds keep it to seconds.
        var rounds = change == Change.CapEndsOldest ? Rounds / 4 : Rounds;
        for (var i = 1; i <= rounds; i++)
        {
            var id = kept.Id!;
            var principal = "user-" + Number(i);
            if (change is not (Change.Save or Change.CompareAndSet))
            {
                var session = NewSession(("n", "0"), principal);
                Assert.True(await a.CreateAsync(session));
                id = session.Id!;
                Assert.NotNull(await b.LoadAsync(id));
            }

            held += b.NearCacheCopy(id) is null ? 0 : 1;
            await ChangeOnAsync(a, change, id, principal, i);
            var acknowledged = Stopwatch.GetTimestamp();

            // At once: no wait between the acknowledgement on A and the read on B.
            if (Fresh(await b.LoadAsync(id)))
            {
                delays.Add(0);
                continue;
            }

            // Within the window B still served its copy; the invalidation must arrive, and then every read is fresh.
            staleAtOnce++;
            while (!Fresh(await b.LoadAsync(id)))
            {
                Assert.True(Stopwatch.GetElapsedTime(acknowledged) < TimeSpan.FromSeconds(5), $"{change} {i}: node B still served its copy 5 s after node A's change was acknowledged.");
                await Task.Yield();
            }

            delays.Add(Stopwatch.GetElapsedTime(acknowledged).TotalMilliseconds);

            bool Fresh(SessionSnapshot? read)
                => change is Change.Save or Change.CompareAndSet ? read is not null && Text(read.Attributes["n"]) == Number(i) : read is null;
        }

        delays.Sort();
        output.WriteLine(
            $"{change}: {rounds} changes on node A, each read at once on node B ({watch.Elapsed.TotalSeconds:0.0} s): {staleAtOnce} read stale at once, 0 lost; " +
            $"acknowledgement on A -> B serves the change (ms): p50 {Percentile(delays, 0.50):0.000}, p99 {Percentile(delays, 0.99):0.000}, max {delays[^1]:0.000}; " +
            $"B held a copy before {held} changes; A returned {a.NearCacheLayer!.UnacknowledgedEnds} before B acknowledged.");

        // The test means something only if B was serving copies: it held one before (nearly) every change.
        Assert.True(held >= rounds * 9 / 10, $"Node B held a copy before only {held} of {rounds} changes.");

        // Every change, the ends the cap makes included, returns once B applied it: never stale (docs/near-cache.md).
        Assert.Equal(0, staleAtOnce);
    }

    [Fact]
    public async Task A_killed_listener_connection_flushes_the_cache_which_comes_back_after_a_heartbeat()
    {
        await using var nodes = await NearCacheNodes.StartAsync(server);
        var (a, b) = (nodes.A, nodes.B);
        var session = NewSession(("n", "0"));
        Assert.True(await a.CreateAsync(session));
        var staleAtOnce = 0;
        var kills = 0;
        for (var i = 1; i <= 600; i++)
        {
            if (i % 200 == 100)
            {
                // A load that the previous change's invalidation overtakes is served but not cached: load until one is.
                await ServerProcess.UntilAsync(
                    async () => await b.LoadAsync(session.Id!) is not null && b.NearCacheCopy(session.Id!) is not null,
                    TimeSpan.FromSeconds(5),
                    "node B cached its copy");
                var before = await ListenerPidAsync(b);
                Assert.Equal(1, await server.ScalarAsync($"SELECT pg_terminate_backend({before})::int"));
                kills++;

                // Dropped as soon as the connection's end is seen; served again only after a new LISTEN and a heartbeat.
                await ServerProcess.UntilAsync(() => Task.FromResult(b.NearCacheCopy(session.Id!) is null), TimeSpan.FromSeconds(5), "node B flushed its cache");
                await NearCacheNodes.UntilUsableAsync(b);
                Assert.NotEqual(before, await ListenerPidAsync(b));
            }

            Assert.Equal(SessionSaveResult.Saved, await a.SaveAsync(new SessionChanges(session.Id!, Values(("n", Number(i))))));
            var acknowledged = Stopwatch.GetTimestamp();
            if (!Fresh(await b.LoadAsync(session.Id!)))
            {
                staleAtOnce++;
                while (!Fresh(await b.LoadAsync(session.Id!)))
                {
                    Assert.True(Stopwatch.GetElapsedTime(acknowledged) < TimeSpan.FromSeconds(5), $"Change {i}: node B still served its copy 5 s after it was acknowledged.");
                    await Task.Yield();
                }
            }

            bool Fresh(SessionSnapshot? read) => read is not null && Text(read.Attributes["n"]) == Number(i);
        }

        output.WriteLine($"{kills} kills of node B's listener backend during 600 changes on A: {staleAtOnce} read stale at once on B, 0 lost.");
        Assert.NotNull(b.NearCacheCopy(session.Id!));
    }

    [Fact]
    public async Task Repeated_reads_of_a_cached_session_make_no_round_trip_and_a_save_makes_one()
    {
        using var counting = new CommandCounter();
        var withCache = counting.NewDataSource(server.Server.ConnectionString, out var cachedCommands);
        var without = counting.NewDataSource(server.Server.ConnectionString, out var plainCommands);
        await using var cached = await PostgresTestServer.CreateStoreAsync(withCache, TimeProvider.System, configure: o =>
        {
            o.NearCache.Enabled = true;

            // No heartbeat during the measurement: the listener sends its first one as soon as it listens.
            o.NearCache.HeartbeatInterval = TimeSpan.FromMinutes(1);
        });
        await using var plain = await PostgresTestServer.CreateStoreAsync(without, TimeProvider.System);
        await NearCacheNodes.UntilUsableAsync(cached);
        var session = NewSession(("n", "0"));
        Assert.True(await cached.CreateAsync(session));
        Assert.True(await plain.CreateAsync(session));
        Assert.NotNull(await cached.LoadAsync(session.Id!));
        Assert.NotNull(await plain.LoadAsync(session.Id!));

        var (cachedBefore, plainBefore) = (cachedCommands.Count, plainCommands.Count);
        for (var i = 0; i < 200; i++)
        {
            Assert.NotNull(await cached.LoadAsync(session.Id!));
            Assert.NotNull(await plain.LoadAsync(session.Id!));
        }

        var (cachedReads, plainReads) = (cachedCommands.Count - cachedBefore, plainCommands.Count - plainBefore);

        // A signed-in request: read the session, write one attribute; the next read is served from this node's copy.
        cachedBefore = cachedCommands.Count;
        for (var i = 1; i <= 50; i++)
        {
            var read = await cached.LoadAsync(session.Id!);
            Assert.Equal(Number(i - 1), Text(read!.Attributes["n"]));
            Assert.Equal(SessionSaveResult.Saved, await cached.SaveAsync(new SessionChanges(session.Id!, Values(("n", Number(i))))));
        }

        var signedIn = cachedCommands.Count - cachedBefore;
        var (cachedSave, plainSave) = (await SaveTimeAsync(cached), await SaveTimeAsync(plain));
        output.WriteLine($"Round trips per read, 200 repeated reads: {cachedReads / 200.0:0.00} with the near cache, {plainReads / 200.0:0.00} without; per read-then-write request: {signedIn / 50.0:0.00}. " +
            $"Save p50 {cachedSave:0.000} ms with the near cache (it returns once its own notification came back), {plainSave:0.000} ms without.");
        Assert.Equal(0, cachedReads);
        Assert.Equal(200, plainReads);
        Assert.Equal(50, signedIn);
        await server.DropAsync(cached);
        await server.DropAsync(plain);

        async Task<double> SaveTimeAsync(PostgresSessionStore store)
        {
            var times = new List<double>();
            for (var i = 0; i < 200; i++)
            {
                var started = Stopwatch.GetTimestamp();
                Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(session.Id!, Values(("m", Number(i))))));
                times.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }

            times.Sort();
            return Percentile(times, 0.5);
        }
    }

    [Fact]
    public async Task A_node_that_starts_knows_at_once_the_nodes_already_listening_to_its_channel()
    {
        // A heartbeat every minute: A's next one is far off, so B can know A only from the listener connections.
        var options = PostgresTestServer.NewOptions(server.DataSource);
        void Slow(PostgresSessionStoreOptions o) => (o.TablePrefix, o.NearCache.Enabled, o.NearCache.HeartbeatInterval) = (options.TablePrefix, true, TimeSpan.FromMinutes(1));
        await using var sourceA = PostgresTestServer.NewDataSource(server.Server.ConnectionString);
        await using var sourceB = PostgresTestServer.NewDataSource(server.Server.ConnectionString);
        var a = await PostgresTestServer.CreateStoreAsync(sourceA, TimeProvider.System, configure: Slow);
        var elsewhere = await server.CreateStoreAsync(TimeProvider.System, configure: o => (o.NearCache.Enabled, o.NearCache.HeartbeatInterval) = (true, TimeSpan.FromMinutes(1)));
        try
        {
            await NearCacheNodes.UntilUsableAsync(a);
            await NearCacheNodes.UntilUsableAsync(elsewhere);
            await using (var b = await PostgresTestServer.CreateStoreAsync(sourceB, TimeProvider.System, configure: Slow))
            {
                await NearCacheNodes.UntilUsableAsync(b);
                await ServerProcess.UntilAsync(() => Task.FromResult(b.NearCacheLayer!.LiveNodeCount == 1), TimeSpan.FromSeconds(10), "the new node counts the node listening to its channel");

                // The node of other tables listens to another channel: not counted.
                Assert.Equal(1, b.NearCacheLayer!.LiveNodeCount);
            }
        }
        finally
        {
            await server.DropAsync(elsewhere);
            await server.DropAsync(a);
        }
    }

    [Fact]
    public async Task Each_set_of_tables_has_its_own_channel_and_a_store_without_the_cache_notifies_nothing()
    {
        await using var nodes = await NearCacheNodes.StartAsync(server);
        var other = await server.CreateStoreAsync(TimeProvider.System, configure: o => o.NearCache.Enabled = true);
        await using var off = await PostgresTestServer.CreateStoreAsync(server.DataSource, TimeProvider.System, configure: o => o.TablePrefix = nodes.Options.TablePrefix);
        try
        {
            Assert.Equal("cs_tests." + nodes.Options.TablePrefix + "sessions", nodes.A.NotificationChannel);
            Assert.Equal(nodes.A.NotificationChannel, nodes.B.NotificationChannel);
            Assert.NotEqual(nodes.A.NotificationChannel, other.NotificationChannel);
            Assert.Null(off.NotificationChannel);
            Assert.Equal(PostgresNearCacheChannel.HashedPrefix.Length + 32, PostgresNearCacheChannel.For(new string('s', 40), "clustersession_").Length);
            Assert.Equal(PostgresNearCacheChannel.HashedPrefix.Length + 32, PostgresNearCacheChannel.For("public", "app's_").Length);

            await using var listener = await server.DataSource.OpenConnectionAsync();
            var heard = new List<string>();
            listener.Notification += (_, e) => heard.Add(e.Payload);
            await using (var listen = new NpgsqlCommand($"LISTEN \"{nodes.A.NotificationChannel}\"", listener))
            {
                await listen.ExecuteNonQueryAsync();
            }

            // Changes on other tables, and changes through a store without the near cache, are not heard on this channel.
            var elsewhere = NewSession(("n", "0"));
            Assert.True(await other.CreateAsync(elsewhere));
            Assert.Equal(SessionSaveResult.Saved, await other.SaveAsync(new SessionChanges(elsewhere.Id!, Values(("n", "1")))));
            var session = NewSession(("n", "0"));
            Assert.True(await off.CreateAsync(session));
            Assert.Equal(SessionSaveResult.Saved, await off.SaveAsync(new SessionChanges(session.Id!, Values(("n", "1")))));
            Assert.Equal(SessionSaveResult.Saved, await nodes.A.SaveAsync(new SessionChanges(session.Id!, Values(("n", "2")))));

            // In commit order: by the time A's change is heard, the earlier ones would have been.
            // Named by a digest of the id: a session id never goes out on a channel any role may LISTEN to.
            // On layout 3 that digest is the handle (before it, the previous release's digest, which its nodes understand).
            var expected = SessionHandle.FromId(session.Id!) + ":" + (session.Version + 2).ToString(CultureInfo.InvariantCulture);
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!heard.Contains(expected))
            {
                Assert.True(DateTime.UtcNow < deadline, "A's change was not heard on the channel.");
                await listener.WaitAsync(TimeSpan.FromMilliseconds(100));
            }

            Assert.Equal([expected], heard.Where(p => !p.StartsWith("h:", StringComparison.Ordinal)));
            Assert.DoesNotContain(heard, p => p.Contains(session.Id!, StringComparison.Ordinal));
        }
        finally
        {
            await server.DropAsync(other);
        }
    }

    [Fact]
    public async Task Hits_keep_sliding_expiry_working_by_refreshing_the_last_access_off_the_request_path()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero));
        var store = await server.CreateStoreAsync(time, configure: o =>
        {
            o.NearCache.Enabled = true;
            o.NearCache.MaxAge = TimeSpan.FromMinutes(10);
            o.NearCache.HeartbeatInterval = TimeSpan.FromMinutes(1);
        });
        try
        {
            await NearCacheNodes.UntilUsableAsync(store);
            var idle = TimeSpan.FromSeconds(10);
            var session = SessionSnapshot.CreateNew(SessionId.Create(), time.GetUtcNow(), idle, TimeSpan.FromHours(1), Values(("n", "0")));
            Assert.True(await store.CreateAsync(session));
            Assert.NotNull(await store.LoadAsync(session.Id!));

            // Past the touch interval (a tenth of the idle timeout): the hit returns the copy at once and refreshes in the background.
            time.Advance(TimeSpan.FromSeconds(6));
            var hit = await store.LoadAsync(session.Id!);
            Assert.Equal(session.CreatedAt, hit!.LastAccessedAt);
            await ServerProcess.UntilAsync(
                async () => await server.ScalarAsync($"SELECT count(*) FROM {store.SessionsTableName} WHERE last_accessed_at > created_at") == 1,
                TimeSpan.FromSeconds(10),
                "the background touch refreshed the last access");
            await ServerProcess.UntilAsync(() => Task.FromResult(store.NearCacheCopy(session.Id!)?.LastAccessedAt > session.CreatedAt), TimeSpan.FromSeconds(10), "the copy took the refreshed session");

            // 12 s after creation, 6 s after the refresh: alive in the store, as a session read every few seconds must be.
            time.Advance(TimeSpan.FromSeconds(6));
            Assert.NotNull(await store.LoadAsync(session.Id!));
            Assert.Equal(1, await server.ScalarAsync($"SELECT count(*) FROM {store.SessionsTableName} WHERE expires_at > '{time.GetUtcNow():O}'::timestamptz"));
        }
        finally
        {
            await server.DropAsync(store);
        }
    }

    [Fact]
    public async Task Disposing_the_store_stops_its_listener_even_on_a_data_source_it_does_not_own()
    {
        var store = await server.CreateStoreAsync(TimeProvider.System, configure: o => o.NearCache.Enabled = true);
        await NearCacheNodes.UntilUsableAsync(store);
        NearCacheNodes.Admin = server.DataSource;
        var pid = await ListenerPidAsync(store);

        await server.DropAsync(store);

        // Back in the pool, but no longer the listener: it stopped LISTENing (else it would hold PostgreSQL's notification
        // queue) in the same statement that reset its name.
        Assert.Equal(0, await server.ScalarAsync($"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid} AND application_name = '{store.ListenerApplicationName}'"));
    }

    [Fact]
    public async Task A_rolled_back_change_is_not_announced()
    {
        await using var nodes = await NearCacheNodes.StartAsync(server);
        var (a, b) = (nodes.A, nodes.B);
        var first = NewSession(("n", "0"));
        var second = NewSession(("n", "0"));
        Assert.True(await a.CreateAsync(first));
        Assert.True(await a.CreateAsync(second));
        Assert.NotNull(await b.LoadAsync(first.Id!));

        // The id change fails (the new id is taken): its UPDATE, and the notification in the same statement, roll back.
        Assert.False(await a.ChangeIdAsync(first.Id!, second.Id!));
        Assert.Equal(SessionSaveResult.Saved, await a.SaveAsync(new SessionChanges(second.Id!, Values(("n", "1")))));

        // Notifications arrive in commit order: once the later save's is handled, the rolled-back one would have been.
        await ServerProcess.UntilAsync(async () => (await b.LoadAsync(second.Id!))?.Attributes["n"] is { } n && Text(n) == "1", TimeSpan.FromSeconds(5), "node B read the save");
        Assert.NotNull(b.NearCacheCopy(first.Id!));
    }

    private static async Task ChangeOnAsync(PostgresSessionStore a, Change change, string id, string principal, int i)
    {
        switch (change)
        {
            case Change.Save:
                Assert.Equal(SessionSaveResult.Saved, await a.SaveAsync(new SessionChanges(id, Values(("n", Number(i))))));
                break;
            case Change.CompareAndSet:
                Assert.Equal(AttributeCasStatus.Succeeded, (await a.CompareAndSetAttributeAsync(id, "n", Bytes(Number(i - 1)), Bytes(Number(i)))).Status);
                break;
            case Change.Delete:
                Assert.True(await a.DeleteAsync(id));
                break;
            case Change.IdChange:
                Assert.True(await a.ChangeIdAsync(id, SessionId.Create()));
                break;
            case Change.RevokeByUser:
                // What ISessionManager.RevokeAllAsync does.
                var found = await a.FindByPrincipalAsync(principal);
                Assert.Equal([SessionHandle.FromId(id)], found.Select(f => f.Handle));
                Assert.True(await a.DeleteByHandleAsync(principal, SessionHandle.FromId(id)));
                break;
            case Change.CapEndsOldest:
                var newer = NewSession(("n", "0"));
                Assert.True(await a.CreateAsync(newer));
                var admission = await a.AdmitAsync(newer.Id!, principal, 1, SessionCapPolicy.EndOldestSession);
                Assert.Equal([SessionHandle.FromId(id)], admission.EndedHandles);
                break;
        }
    }

    private static async Task<long> ListenerPidAsync(PostgresSessionStore store)
    {
        long pid = 0;
        await ServerProcess.UntilAsync(
            async () =>
            {
                await using var command = new NpgsqlCommand("SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE application_name = $1");
                await using var connection = await NearCacheNodes.Admin!.OpenConnectionAsync();
                command.Connection = connection;
                command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = store.ListenerApplicationName });
                pid = Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
                return pid != 0;
            },
            TimeSpan.FromSeconds(10),
            "the listener connection shows in pg_stat_activity");
        return pid;
    }

    private static SessionSnapshot NewSession((string Name, string Value) attribute, string? principal = null)
        => SessionSnapshot.CreateNew(SessionId.Create(), DateTimeOffset.UtcNow, Idle, Lifetime, Values(attribute), principal);

    private static string Number(int i) => i.ToString(CultureInfo.InvariantCulture);

    private static byte[] Bytes(string value) => System.Text.Encoding.UTF8.GetBytes(value);

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
}

/// <summary>Two stores with the near cache on, each with its own data source (two nodes), on one fresh set of tables.</summary>
internal sealed class NearCacheNodes : IAsyncDisposable
{
    private readonly PostgresTestServer _server;
    private readonly NpgsqlDataSource _a;
    private readonly NpgsqlDataSource _b;

    private NearCacheNodes(PostgresTestServer server, NpgsqlDataSource a, NpgsqlDataSource b, PostgresSessionStore storeA, PostgresSessionStore storeB, PostgresSessionStoreOptions options)
    {
        _server = server;
        (_a, _b, A, B, Options) = (a, b, storeA, storeB, options);
    }

    /// <summary>The shared data source of the test server, for statements of the tests themselves.</summary>
    public static NpgsqlDataSource? Admin { get; set; }

    public PostgresSessionStore A { get; }

    public PostgresSessionStore B { get; }

    public PostgresSessionStoreOptions Options { get; }

    public static async Task<NearCacheNodes> StartAsync(PostgresTestServer server)
    {
        Admin = server.DataSource;
        var a = PostgresTestServer.NewDataSource(server.Server.ConnectionString);
        var b = PostgresTestServer.NewDataSource(server.Server.ConnectionString);
        var options = PostgresTestServer.NewOptions(a);
        options.NearCache.Enabled = true;
        var storeA = await PostgresTestServer.CreateStoreAsync(a, TimeProvider.System, configure: o => (o.TablePrefix, o.NearCache.Enabled) = (options.TablePrefix, true));
        var storeB = await PostgresTestServer.CreateStoreAsync(b, TimeProvider.System, configure: o => (o.TablePrefix, o.NearCache.Enabled) = (options.TablePrefix, true));
        await UntilUsableAsync(storeA);
        await UntilUsableAsync(storeB);
        return new NearCacheNodes(server, a, b, storeA, storeB, options);
    }

    public static Task UntilUsableAsync(PostgresSessionStore store)
        => ServerProcess.UntilAsync(() => Task.FromResult(store.NearCacheUsable), TimeSpan.FromSeconds(10), "the near cache heard a heartbeat");

    public async ValueTask DisposeAsync()
    {
        await B.DisposeAsync();
        await _server.DropAsync(A);
        await _a.DisposeAsync();
        await _b.DisposeAsync();
    }
}

/// <summary>Counts the commands and batches (each one round trip) that data sources send, through Npgsql's tracing hooks.</summary>
internal sealed class CommandCounter : IDisposable
{
    private readonly ActivityListener _listener;
    private readonly List<NpgsqlDataSource> _dataSources = [];

    public CommandCounter()
    {
        // Npgsql asks the filters only while someone listens to its activity source; nothing needs recording.
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Npgsql",
            Sample = static (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.None,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public NpgsqlDataSource NewDataSource(string connectionString, out Counter counter)
    {
        var count = new Counter();
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        builder.ConnectionStringBuilder.MaxAutoPrepare = 32;
        builder.ConfigureTracing(o => o
            .ConfigureCommandFilter(_ => count.Add())
            .ConfigureBatchFilter(_ => count.Add()));
        var dataSource = builder.Build();
        _dataSources.Add(dataSource);
        counter = count;
        return dataSource;
    }

    public void Dispose()
    {
        _listener.Dispose();
        foreach (var dataSource in _dataSources)
        {
            dataSource.Dispose();
        }
    }

    internal sealed class Counter
    {
        private int _count;

        public int Count => Volatile.Read(ref _count);

        public bool Add()
        {
            Interlocked.Increment(ref _count);
            return false;
        }
    }
}
