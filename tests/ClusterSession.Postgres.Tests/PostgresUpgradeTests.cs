using System.Collections.Concurrent;
using System.Globalization;
using ClusterSession.Testing.Servers;
using Npgsql;
using static ClusterSession.Postgres.Tests.PostgresSessionStoreTests;

namespace ClusterSession.Postgres.Tests;

/// <summary>
/// Layouts and the upgrade: a store keeps no session id (layout 3); on a database of the previous release (v0.2.0-preview.1)
/// it writes that release's layout beside that release's nodes, and <see cref="PostgresSessionStore.UpgradeAsync"/> moves the
/// rest under load, losing nothing.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresUpgradeTests(PostgresTestServer server) : IAsyncLifetime
{
    private static readonly TimeSpan Idle = TimeSpan.FromMinutes(30);
    private static readonly TimeSpan Lifetime = TimeSpan.FromHours(8);
    private readonly List<PostgresSessionStore> _stores = [];
    private string _prefix = null!;

    public Task InitializeAsync()
    {
        _prefix = PostgresTestServer.NewOptions(server.DataSource).TablePrefix;
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var store in _stores)
        {
            await store.DisposeAsync();
        }

        await server.DropAsync(NewStore());
    }

    [Fact]
    public async Task The_sql_handle_expression_equals_SessionHandle_FromId()
    {
        var ids = Enumerable.Range(0, 200).Select(_ => SessionId.Create()).ToArray();
        await using var command = server.DataSource.CreateCommand($"SELECT {PostgresSql.HandleSql("id")} FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n) ORDER BY n");
        command.Parameters.Add(new NpgsqlParameter { Value = ids });
        var handles = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            handles.Add(reader.GetString(0));
        }

        Assert.Equal(ids.Select(SessionHandle.FromId), handles);
    }

    [Fact]
    public async Task A_fresh_store_writes_no_session_id_anywhere()
    {
        var store = await NewStoreWithSchemaAsync();
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var session = NewSession(("a", i.ToString(CultureInfo.InvariantCulture)));
            Assert.True(await store.CreateAsync(session));
            ids.Add(session.Id!);
            Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(session.Id!, Values(("b", "2")), principalChanged: true, principal: "alice")));
            Assert.Equal(AttributeCasStatus.Succeeded, (await store.CompareAndSetAttributeAsync(session.Id!, "c", null, Bytes("3"))).Status);
        }

        var renamed = SessionId.Create();
        Assert.True(await store.ChangeIdAsync(ids[0], renamed));
        ids.Add(renamed);
        Assert.Equal(SessionAdmissionStatus.Admitted, (await store.AdmitAsync(ids[1], "bob", 1, SessionCapPolicy.EndOldestSession)).Status);
        Assert.NotNull(await store.LoadAsync(renamed));
        Assert.False(store.WritesPreviousLayout);

        var everything = await AllRowsAsync(store);
        Assert.NotEmpty(everything);
        Assert.All(ids, id => Assert.DoesNotContain(everything, row => row.Contains(id, StringComparison.Ordinal)));
        Assert.Equal(0, await server.ScalarAsync($"SELECT count(*) FROM {store.SessionsTableName} WHERE length(id) <> {SessionHandle.Length}"));
        Assert.Equal("3", await MarkerAsync(store));
    }

    [Fact]
    public async Task A_store_on_a_previous_release_database_writes_the_previous_layout_beside_an_old_node()
    {
        var old = await PreviousReleaseDatabaseAsync();
        var oldSession = await old.CreateAsync(("a", "old"));
        var store = NewStore();

        Assert.Equal("old", Text((await store.LoadAsync(oldSession))!.Attributes["a"]));
        Assert.True(store.WritesPreviousLayout);
        var session = NewSession(("a", "new"));
        Assert.True(await store.CreateAsync(session));
        Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(oldSession, Values(("b", "by the new node")))));

        // The previous release reads what this one wrote, and this one what it wrote: rows keyed by ids, as before.
        Assert.Equal("new", await old.LoadAsync(session.Id!, "a"));
        Assert.Equal("by the new node", await old.LoadAsync(oldSession, "b"));
        Assert.Equal(2, await server.ScalarAsync($"SELECT count(*) FROM {store.SessionsTableName} WHERE length(id) = {SessionId.Length}"));
        Assert.Equal(0, await server.ScalarAsync($"SELECT to_regclass('{store.StoreTableName}') IS NOT NULL")); // no DDL right: no store table
    }

    [Fact]
    public async Task Upgrade_under_parallel_saves_and_compare_and_set_loses_no_write_and_no_session()
    {
        const int Sessions = 400;
        var old = await PreviousReleaseDatabaseAsync();
        var ids = new List<string>();
        for (var i = 0; i < Sessions; i++)
        {
            ids.Add(await old.CreateAsync(("n", "0")));
        }

        // The operator deployed this release (the schema gains its store table), nodes registered and served a while.
        var a = NewStore();
        await a.CreateSchemaAsync();
        var b = NewStore();
        Assert.NotNull(await a.LoadAsync(ids[0]));
        Assert.NotNull(await b.LoadAsync(ids[0]));
        Assert.True(a.WritesPreviousLayout && b.WritesPreviousLayout);

        using var stop = new CancellationTokenSource();
        var increments = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        var saves = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        var created = new ConcurrentBag<string>();
        var workers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            var node = w % 2 == 0 ? a : b;
            var random = new Random(w);
            while (!stop.IsCancellationRequested)
            {
                var id = ids[random.Next(ids.Count)];
                await node.UpdateAttributeAsync(id, "n", current: null, value => Bytes(((value is null ? 0 : int.Parse(Text(value), CultureInfo.InvariantCulture)) + 1).ToString(CultureInfo.InvariantCulture)));
                increments.AddOrUpdate(id, 1, (_, n) => n + 1);
                Assert.Equal(SessionSaveResult.Saved, await node.SaveAsync(new SessionChanges(id, Values(($"w{w}", "x")))));
                saves.TryAdd(id + "/" + w, 0);
                var fresh = NewSession(("n", "0"));
                Assert.True(await node.CreateAsync(fresh));
                created.Add(fresh.Id!);
            }
        })).ToArray();

        var result = await NewStore().UpgradeAsync();
        await ServerProcess.UntilAsync(() => Task.FromResult(!a.WritesPreviousLayout && !b.WritesPreviousLayout), TimeSpan.FromSeconds(10), "both nodes switched to layout 3");
        await Task.Delay(300);
        await stop.CancelAsync();
        await Task.WhenAll(workers);

        Assert.Equal(SessionStoreUpgradeStatus.Upgraded, result.Status);
        Assert.True(result.SessionsMoved >= Sessions, result.Message);
        Assert.True(increments.Values.Sum() > 100, "the writers ran during the upgrade");
        Assert.Equal("3", await MarkerAsync(a));
        Assert.Equal(0, await server.ScalarAsync($"SELECT count(*) FROM {a.SessionsTableName} WHERE length(id) <> {SessionHandle.Length}"));
        foreach (var id in ids)
        {
            var loaded = await a.LoadAsync(id);
            Assert.NotNull(loaded);
            Assert.Equal(increments.GetValueOrDefault(id), int.Parse(Text(loaded.Attributes["n"]), CultureInfo.InvariantCulture));
        }

        foreach (var key in saves.Keys)
        {
            var (id, w) = (key[..SessionId.Length], key[(SessionId.Length + 1)..]);
            Assert.True((await b.LoadAsync(id))!.Attributes.ContainsKey("w" + w));
        }

        Assert.All(created, id => Assert.NotNull(a.LoadAsync(id).AsTask().Result));
        Assert.Equal(Sessions + created.Count, await a.CountAsync());
    }

    [Fact]
    public async Task Upgrade_twice_is_nothing_to_do_the_second_time()
    {
        var old = await PreviousReleaseDatabaseAsync();
        var id = await old.CreateAsync(("a", "1"));
        var node = NewStore();
        await node.CreateSchemaAsync();

        var first = await node.UpgradeAsync();
        var second = await node.UpgradeAsync();

        Assert.Equal(SessionStoreUpgradeStatus.Upgraded, first.Status);
        Assert.Equal(1, first.SessionsMoved);
        Assert.Equal(SessionStoreUpgradeStatus.NothingToDo, second.Status);
        Assert.Equal(0, second.SessionsMoved);
        Assert.Equal("1", Text((await node.LoadAsync(id))!.Attributes["a"]));
        Assert.Equal(SessionStoreUpgradeStatus.NothingToDo, (await (await NewStoreWithSchemaAsync(fresh: true)).UpgradeAsync()).Status);
    }

    [Fact]
    public async Task Upgrade_is_refused_while_a_node_of_the_previous_release_creates_sessions()
    {
        var old = await PreviousReleaseDatabaseAsync();
        var node = NewStore();
        await node.CreateSchemaAsync();
        var mine = NewSession(("a", "1"));
        Assert.True(await node.CreateAsync(mine));

        // After this release's first node registered, a session appears in the previous layout without its mark.
        var theirs = await old.CreateAsync(("a", "2"));
        var result = await NewStore().UpgradeAsync();

        Assert.Equal(SessionStoreUpgradeStatus.Refused, result.Status);
        Assert.Contains("previous release", result.Message, StringComparison.Ordinal);
        Assert.Equal("2", await MarkerAsync(node));
        Assert.Equal(2, await server.ScalarAsync($"SELECT count(*) FROM {node.SessionsTableName} WHERE length(id) = {SessionId.Length}"));
        Assert.Equal("2", await old.LoadAsync(theirs, "a"));
        Assert.Equal("1", await old.LoadAsync(mine.Id!, "a"));
    }

    [Fact]
    public async Task Upgrade_is_refused_on_a_database_whose_store_table_it_had_to_create()
    {
        var old = await PreviousReleaseDatabaseAsync();
        var id = await old.CreateAsync(("a", "1"));

        var result = await NewStore().UpgradeAsync();

        Assert.Equal(SessionStoreUpgradeStatus.Refused, result.Status);
        Assert.Contains("run the upgrade again", result.Message, StringComparison.Ordinal);
        Assert.Equal("1", await old.LoadAsync(id, "a"));
    }

    [Fact]
    public async Task Upgrade_is_refused_while_a_live_node_does_not_confirm_and_the_marker_goes_back()
    {
        var old = await PreviousReleaseDatabaseAsync();
        var id = await old.CreateAsync(("a", "1"));
        var node = NewStore();
        await node.CreateSchemaAsync();
        Assert.NotNull(await node.LoadAsync(id));

        // A registered node that keeps beating "2": it never follows the marker.
        using var stop = new CancellationTokenSource();
        var stuck = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await server.ScalarAsync($"INSERT INTO {node.StoreTableName} (name, value) VALUES ('node:stuck', '2') ON CONFLICT (name) DO UPDATE SET value = '2', updated_at = now() RETURNING 1");
                await Task.Delay(100);
            }
        });

        var result = await NewStore().UpgradeAsync();
        await stop.CancelAsync();
        await stuck;

        Assert.Equal(SessionStoreUpgradeStatus.Refused, result.Status);
        Assert.StartsWith("Upgrade refused: 1 running nodes did not confirm", result.Message, StringComparison.Ordinal);
        Assert.Equal("2", await MarkerAsync(node));
        Assert.Equal("1", await old.LoadAsync(id, "a"));
    }

    [Fact]
    public async Task A_node_in_the_previous_layout_switches_by_itself_after_another_nodes_upgrade()
    {
        var old = await PreviousReleaseDatabaseAsync();
        var id = await old.CreateAsync(("a", "1"));
        var node = NewStore();
        await node.CreateSchemaAsync();
        Assert.NotNull(await node.LoadAsync(id));
        Assert.True(node.WritesPreviousLayout);

        Assert.Equal(SessionStoreUpgradeStatus.Upgraded, (await NewStore().UpgradeAsync()).Status);
        await ServerProcess.UntilAsync(() => Task.FromResult(!node.WritesPreviousLayout), TimeSpan.FromSeconds(5), "the node read marker 3");

        var session = NewSession(("a", "2"));
        Assert.True(await node.CreateAsync(session));
        Assert.Equal("1", Text((await node.LoadAsync(id))!.Attributes["a"]));
        Assert.Equal(0, await server.ScalarAsync($"SELECT count(*) FROM {node.SessionsTableName} WHERE length(id) <> {SessionHandle.Length}"));
    }

    private PostgresSessionStore NewStore()
    {
        var options = PostgresTestServer.NewOptions(server.DataSource);
        options.TablePrefix = _prefix;
        options.LayoutRefreshInterval = TimeSpan.FromMilliseconds(200);
        // Short refreshes keep the upgrade's waits short; a save under 8 parallel workers on a loaded 2-core machine took over 1 s once.
        options.CommandTimeout = TimeSpan.FromSeconds(5);
        var store = new PostgresSessionStore(options);
        _stores.Add(store);
        return store;
    }

    private async Task<PostgresSessionStore> NewStoreWithSchemaAsync(bool fresh = false)
    {
        if (fresh)
        {
            _prefix = PostgresTestServer.NewOptions(server.DataSource).TablePrefix;
        }

        var store = NewStore();
        await store.CreateSchemaAsync();
        return store;
    }

    /// <summary>Tables as the previous release created them (no store table), and a node of that release on them.</summary>
    private async Task<PreviousReleaseNode> PreviousReleaseDatabaseAsync()
    {
        await using var creator = NewStore();
        _stores.Remove(creator);
        await creator.CreateSchemaAsync();
        await server.ScalarAsync($"DROP TABLE {creator.StoreTableName}; SELECT 1");
        return new PreviousReleaseNode(server.DataSource, creator.SessionsTableName, creator.AttributesTableName);
    }

    private async Task<string?> MarkerAsync(PostgresSessionStore store)
    {
        await using var command = server.DataSource.CreateCommand($"SELECT value FROM {store.StoreTableName} WHERE name = 'layout'");
        return (string?)await command.ExecuteScalarAsync();
    }

    /// <summary>Every row of every table of the store, as text.</summary>
    private async Task<List<string>> AllRowsAsync(PostgresSessionStore store)
    {
        var rows = new List<string>();
        foreach (var table in new[] { store.SessionsTableName, store.AttributesTableName, store.StoreTableName, store.KeyRingTableName })
        {
            await using var command = server.DataSource.CreateCommand($"SELECT t::text FROM {table} t");
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                rows.Add(reader.GetString(0));
            }
        }

        return rows;
    }

    private static SessionSnapshot NewSession(params (string Name, string Value)[] attributes)
        => SessionSnapshot.CreateNew(SessionId.Create(), DateTimeOffset.UtcNow, Idle, Lifetime, Values(attributes));
}

/// <summary>
/// A node of the previous release (v0.2.0-preview.1, commit 984df1a): its create and load statements, verbatim but for the
/// near cache (off), on the database's clock.
/// </summary>
internal sealed class PreviousReleaseNode(NpgsqlDataSource dataSource, string sessions, string attributes)
{
    public async Task<string> CreateAsync(params (string Name, string Value)[] values)
    {
        var id = SessionId.Create();
        await using var batch = dataSource.CreateBatch();
        batch.BatchCommands.Add(Command($"DELETE FROM {sessions} WHERE id = $1 AND expires_at <= coalesce($2::timestamptz, now())", id));
        var create = Command(
            $"""
            WITH created AS (
                INSERT INTO {sessions} (id, created_at, last_accessed_at, idle_timeout, absolute_expires_at, expires_at, principal, version)
                SELECT $1, c.now, c.now, $3, c.now + $4, c.now + least($3, $4), $5, $6 FROM (SELECT coalesce($2::timestamptz, now()) AS now) c
                ON CONFLICT (id) DO NOTHING
                RETURNING id),
            inserted AS (
                INSERT INTO {attributes} (session_id, name, value)
                SELECT created.id, u.name, u.value FROM created, unnest($7::text[], $8::bytea[]) AS u(name, value))
            SELECT count(*) FROM created
            """,
            id);
        create.Parameters.Add(new NpgsqlParameter { Value = TimeSpan.FromMinutes(30) });
        create.Parameters.Add(new NpgsqlParameter { Value = TimeSpan.FromHours(8) });
        create.Parameters.Add(new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        create.Parameters.Add(new NpgsqlParameter { Value = 0L });
        create.Parameters.Add(new NpgsqlParameter { Value = values.Select(v => v.Name).ToArray() });
        create.Parameters.Add(new NpgsqlParameter { Value = values.Select(v => Bytes(v.Value)).ToArray() });
        batch.BatchCommands.Add(create);
        Assert.Equal(1L, await batch.ExecuteScalarAsync());
        return id;
    }

    /// <summary>One attribute of a live session as the previous release reads it (by id), or null.</summary>
    public async Task<string?> LoadAsync(string id, string name)
    {
        await using var command = dataSource.CreateCommand(
            $"SELECT a.value FROM {attributes} a JOIN {sessions} s ON s.id = a.session_id WHERE s.id = $1 AND s.expires_at > now() AND a.name = $2");
        command.Parameters.Add(new NpgsqlParameter { Value = id });
        command.Parameters.Add(new NpgsqlParameter { Value = name });
        return await command.ExecuteScalarAsync() is byte[] value ? Text(value) : null;
    }

    private static NpgsqlBatchCommand Command(string sql, string id)
    {
        var command = new NpgsqlBatchCommand(sql);
        command.Parameters.Add(new NpgsqlParameter { Value = id });
        command.Parameters.Add(new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.TimestampTz });
        return command;
    }
}
