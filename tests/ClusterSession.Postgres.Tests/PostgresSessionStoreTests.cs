using System.Text;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSession.Postgres.Tests;

/// <summary>What is specific to the PostgreSQL store: schema, row layout, touch throttling, limits, cleanup.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresSessionStoreTests(PostgresTestServer server) : IAsyncLifetime
{
    private static readonly TimeSpan Idle = TimeSpan.FromMinutes(30);
    private static readonly TimeSpan Lifetime = TimeSpan.FromHours(8);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero));
    private PostgresSessionStore _store = null!;

    public async Task InitializeAsync() => _store = await server.CreateStoreAsync(_time);

    public Task DisposeAsync() => server.DropAsync(_store);

    [Fact]
    public async Task Create_then_load_returns_every_attribute_and_the_metadata()
    {
        var session = NewSession(("a", "1"), ("b", "2"));
        Assert.True(await _store.CreateAsync(session));
        Assert.False(await _store.CreateAsync(session));

        var loaded = await _store.LoadAsync(session.Id!);

        Assert.NotNull(loaded);
        Assert.Equal("1", Text(loaded.Attributes["a"]));
        Assert.Equal("2", Text(loaded.Attributes["b"]));
        Assert.Equal("alice", loaded.Principal);
        Assert.Equal(Idle, loaded.IdleTimeout);
        Assert.Equal(session.CreatedAt, loaded.CreatedAt);
        Assert.Equal(session.AbsoluteExpiresAt, loaded.AbsoluteExpiresAt);
    }

    [Fact]
    public async Task Save_writes_only_the_changed_attribute_rows()
    {
        var session = NewSession(("a", "1"), ("b", "2"), ("c", "3"));
        await _store.CreateAsync(session);
        var before = await AttributeRowVersionsAsync(session.Id!);

        var result = await _store.SaveAsync(new SessionChanges(session.Id!, Values(("b", "22")), removed: ["c"]));

        Assert.Equal(SessionSaveResult.Saved, result);
        var after = await AttributeRowVersionsAsync(session.Id!);
        Assert.Equal(before["a"], after["a"]);
        Assert.NotEqual(before["b"], after["b"]);
        Assert.False(after.ContainsKey("c"));
        var loaded = await _store.LoadAsync(session.Id!);
        Assert.Equal(session.Version + 1, loaded!.Version);
    }

    [Fact]
    public async Task Save_after_delete_returns_gone_and_recreates_nothing()
    {
        var session = NewSession(("a", "1"));
        await _store.CreateAsync(session);
        Assert.True(await _store.DeleteAsync(session.Id!));
        Assert.False(await _store.DeleteAsync(session.Id!));

        var result = await _store.SaveAsync(new SessionChanges(session.Id!, Values(("b", "2"))));

        Assert.Equal(SessionSaveResult.Gone, result);
        Assert.Equal(0, await server.ScalarAsync($"SELECT count(*) FROM {_store.SessionsTableName}"));
        Assert.Equal(0, await server.ScalarAsync($"SELECT count(*) FROM {_store.AttributesTableName}"));
    }

    [Fact]
    public async Task Load_refreshes_the_expiry_only_after_the_touch_interval()
    {
        var session = NewSession();
        await _store.CreateAsync(session);

        _time.Advance(TimeSpan.FromMinutes(2)); // under 10 % of 30 minutes: no write
        var first = await _store.LoadAsync(session.Id!);
        Assert.Equal(session.LastAccessedAt, first!.LastAccessedAt);

        _time.Advance(TimeSpan.FromMinutes(2)); // 4 minutes since the last refresh: refreshed
        var second = await _store.LoadAsync(session.Id!);
        Assert.Equal(_time.GetUtcNow(), second!.LastAccessedAt);

        _time.Advance(Idle - TimeSpan.FromSeconds(1));
        Assert.NotNull(await _store.LoadAsync(session.Id!));
    }

    [Fact]
    public async Task A_session_past_its_expiry_is_absent_and_the_cleanup_deletes_it()
    {
        var expiring = NewSession(("a", "1"));
        await _store.CreateAsync(expiring);
        _time.Advance(TimeSpan.FromMinutes(20));
        var live = NewSession(("a", "1"));
        await _store.CreateAsync(live);
        _time.Advance(TimeSpan.FromMinutes(11));

        Assert.Null(await _store.LoadAsync(expiring.Id!));
        Assert.Equal(SessionSaveResult.Gone, await _store.SaveAsync(new SessionChanges(expiring.Id!, Values(("x", "1")))));
        Assert.Equal(1, await _store.CountAsync());
        Assert.Equal(1, await _store.CleanupExpiredAsync());
        Assert.Equal(0, await _store.CleanupExpiredAsync());
        Assert.NotNull(await _store.LoadAsync(live.Id!));
        Assert.Equal(1, await server.ScalarAsync($"SELECT count(*) FROM {_store.AttributesTableName}"));
    }

    [Fact]
    public async Task The_background_cleanup_runs_on_the_store_clock()
    {
        await using var store = await server.CreateStoreAsync(_time, configure: o => o.CleanupInterval = TimeSpan.FromMinutes(5));
        var session = NewSession(("a", "1"));
        await store.CreateAsync(session);

        _time.Advance(Idle + TimeSpan.FromMinutes(1));

        // The timer fired inside Advance; the cleanup itself runs asynchronously, so wait for its effect.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (await server.ScalarAsync($"SELECT count(*) FROM {store.SessionsTableName}") != 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "The background cleanup did not delete the expired session within 30 seconds.");
            await Task.Delay(20);
        }

        Assert.Equal(0, await server.ScalarAsync($"SELECT count(*) FROM {store.AttributesTableName}"));
        await server.DropAsync(store);
    }

    [Fact]
    public async Task Absolute_lifetime_ends_an_active_session()
    {
        var session = NewSession();
        await _store.CreateAsync(session);
        for (var elapsed = TimeSpan.Zero; elapsed < Lifetime - TimeSpan.FromMinutes(10); elapsed += TimeSpan.FromMinutes(10))
        {
            _time.Advance(TimeSpan.FromMinutes(10));
            Assert.NotNull(await _store.LoadAsync(session.Id!));
        }

        _time.Advance(TimeSpan.FromMinutes(10));
        Assert.Null(await _store.LoadAsync(session.Id!));
    }

    [Fact]
    public async Task Change_id_moves_attributes_and_the_old_id_is_gone()
    {
        var session = NewSession(("a", "1"));
        var taken = NewSession();
        await _store.CreateAsync(session);
        await _store.CreateAsync(taken);
        var newId = SessionId.Create();

        Assert.False(await _store.ChangeIdAsync(session.Id!, taken.Id!));
        Assert.True(await _store.ChangeIdAsync(session.Id!, newId));

        Assert.Null(await _store.LoadAsync(session.Id!));
        Assert.Equal("1", Text((await _store.LoadAsync(newId))!.Attributes["a"]));
        Assert.Equal(SessionSaveResult.Gone, await _store.SaveAsync(new SessionChanges(session.Id!, Values(("b", "2")))));
        Assert.False(await _store.ChangeIdAsync(session.Id!, SessionId.Create()));
    }

    [Fact]
    public async Task Compare_and_set_replaces_only_the_expected_value()
    {
        var session = NewSession(("n", "1"));
        await _store.CreateAsync(session);

        var mismatch = await _store.CompareAndSetAttributeAsync(session.Id!, "n", Bytes("0"), Bytes("2"));
        var success = await _store.CompareAndSetAttributeAsync(session.Id!, "n", Bytes("1"), Bytes("2"));
        var added = await _store.CompareAndSetAttributeAsync(session.Id!, "m", null, Bytes("x"));
        var removed = await _store.CompareAndSetAttributeAsync(session.Id!, "m", Bytes("x"), null);

        Assert.Equal(AttributeCasStatus.Mismatch, mismatch.Status);
        Assert.Equal("1", Text(mismatch.Current!));
        Assert.Equal(AttributeCasStatus.Succeeded, success.Status);
        Assert.Equal(AttributeCasStatus.Succeeded, added.Status);
        Assert.Equal(AttributeCasStatus.Succeeded, removed.Status);
        var loaded = await _store.LoadAsync(session.Id!);
        Assert.Equal("2", Text(loaded!.Attributes["n"]));
        Assert.False(loaded.Attributes.ContainsKey("m"));

        await _store.DeleteAsync(session.Id!);
        Assert.Equal(AttributeCasStatus.Gone, (await _store.CompareAndSetAttributeAsync(session.Id!, "n", Bytes("2"), Bytes("3"))).Status);
        Assert.Equal(0, await server.ScalarAsync($"SELECT count(*) FROM {_store.AttributesTableName}"));
    }

    [Fact]
    public async Task Find_by_principal_returns_live_sessions_with_attributes()
    {
        var first = NewSession(("a", "1"), ("b", "2"));
        var second = NewSession();
        var other = NewSession(principal: "bob");
        await _store.CreateAsync(first);
        await _store.CreateAsync(second);
        await _store.CreateAsync(other);
        await _store.SaveAsync(new SessionChanges(second.Id!, principalChanged: true, principal: null));

        var found = await _store.FindByPrincipalAsync("alice");

        var single = Assert.Single(found);
        Assert.Equal(first.Handle, single.Handle);
        Assert.Null(single.Id);
        Assert.Equal(2, single.Attributes.Count);
        Assert.Empty(await _store.FindByPrincipalAsync("nobody"));
    }

    [Fact]
    public async Task Save_over_the_attribute_limit_throws_and_writes_nothing()
    {
        await using var store = await server.CreateStoreAsync(_time, configure: o => o.Limits = new SessionLimits { MaxAttributes = 2 });
        var session = NewSession(("a", "1"));
        await store.CreateAsync(session);

        await Assert.ThrowsAsync<SessionLimitExceededException>(() => store.SaveAsync(new SessionChanges(session.Id!, Values(("b", "2"), ("c", "3")))).AsTask());
        await Assert.ThrowsAsync<SessionLimitExceededException>(async () =>
        {
            await store.CompareAndSetAttributeAsync(session.Id!, "b", null, Bytes("2"));
            await store.CompareAndSetAttributeAsync(session.Id!, "c", null, Bytes("3"));
        });

        var loaded = await store.LoadAsync(session.Id!);
        Assert.Equal(["a", "b"], loaded!.Attributes.Keys.Order());
        await server.DropAsync(store);
    }

    [Theory]
    [InlineData(false, "p")]
    [InlineData(true, "u")]
    public async Task Create_schema_is_idempotent_and_honours_unlogged(bool unlogged, string persistence)
    {
        var options = PostgresTestServer.NewOptions(server.DataSource, unlogged);
        options.TablePrefix = "Odd\"Name ";
        var store = new PostgresSessionStore(options, _time);
        await store.CreateSchemaAsync();
        await store.CreateSchemaAsync();

        Assert.True(await store.CreateAsync(NewSession(("a", "1"))));
        Assert.Equal(2, await server.ScalarAsync(
            $"SELECT count(*) FROM pg_class WHERE relname IN ('Odd\"Name sessions', 'Odd\"Name attributes') AND relpersistence = '{persistence}' AND relnamespace = 'cs_tests'::regnamespace"));
        await server.DropAsync(store);
    }

    [Fact]
    public async Task Create_schema_never_converts_existing_tables_and_warns_about_the_mismatch()
    {
        var options = PostgresTestServer.NewOptions(server.DataSource, unlogged: true);
        options.TablePrefix = TablePrefixOf(_store);
        var logger = new EventLogger();
        await using var unloggedView = new PostgresSessionStore(options, _time, logger);

        await unloggedView.CreateSchemaAsync();

        Assert.Contains(2005, logger.EventIds);
        Assert.Equal(2, await server.ScalarAsync(
            $"SELECT count(*) FROM pg_class WHERE oid IN (to_regclass('{_store.SessionsTableName}'), to_regclass('{_store.AttributesTableName}')) AND relpersistence = 'p'"));
    }

    [Fact]
    public async Task A_missing_schema_is_reported_with_the_fix()
    {
        await using var store = new PostgresSessionStore(PostgresTestServer.NewOptions(server.DataSource), _time);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => store.LoadAsync(SessionId.Create()).AsTask());

        Assert.Contains("CreateSchemaAsync", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_schema_on_startup_creates_the_tables_before_the_first_command()
    {
        var options = PostgresTestServer.NewOptions(server.DataSource);
        options.CreateSchemaOnStartup = true;
        var store = new PostgresSessionStore(options, _time);

        Assert.True(await store.CreateAsync(NewSession()));
        Assert.Equal(1, await store.CountAsync());
        await server.DropAsync(store);
    }

    private SessionSnapshot NewSession(params (string Name, string Value)[] attributes) => NewSession("alice", attributes);

    private SessionSnapshot NewSession(string? principal, params (string Name, string Value)[] attributes)
        => SessionSnapshot.CreateNew(SessionId.Create(), _time.GetUtcNow(), Idle, Lifetime, Values(attributes), principal);

    private async Task<Dictionary<string, string>> AttributeRowVersionsAsync(string id)
    {
        // xmin is the id of the transaction that wrote the row version: unchanged rows keep theirs.
        await using var command = server.DataSource.CreateCommand($"SELECT name, xmin::text FROM {_store.AttributesTableName} WHERE session_id = $1");
        command.Parameters.Add(new Npgsql.NpgsqlParameter { Value = SessionHandle.FromId(id) });
        await using var reader = await command.ExecuteReaderAsync();
        var versions = new Dictionary<string, string>(StringComparer.Ordinal);
        while (await reader.ReadAsync())
        {
            versions[reader.GetString(0)] = reader.GetString(1);
        }

        return versions;
    }

    internal static string TablePrefixOf(PostgresSessionStore store)
    {
        // "cs_tests"."t0123456789ab_sessions" -> t0123456789ab_
        var table = store.SessionsTableName;
        var start = table.LastIndexOf(".\"", StringComparison.Ordinal) + 2;
        return table[start..^"sessions\"".Length];
    }

    internal static Dictionary<string, byte[]> Values(params (string Name, string Value)[] attributes)
        => attributes.ToDictionary(a => a.Name, a => Bytes(a.Value), StringComparer.Ordinal);

    internal static byte[] Bytes(string value) => Encoding.UTF8.GetBytes(value);

    internal static string Text(byte[] value) => Encoding.UTF8.GetString(value);
}

/// <summary>Records the event ids the store logs.</summary>
internal sealed class EventLogger : Microsoft.Extensions.Logging.ILogger<PostgresSessionStore>
{
    public System.Collections.Concurrent.ConcurrentBag<int> EventIds { get; } = [];

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

    public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        => EventIds.Add(eventId.Id);
}
