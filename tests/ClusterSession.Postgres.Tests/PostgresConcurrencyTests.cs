using System.Buffers.Binary;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using static ClusterSession.Postgres.Tests.PostgresSessionStoreTests;

namespace ClusterSession.Postgres.Tests;

/// <summary>Real parallelism against one real server: nothing is lost, nothing is deleted twice or wrongly.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresConcurrencyTests(PostgresTestServer server) : IAsyncLifetime
{
    private const int Writers = 32;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero));
    private PostgresSessionStore _store = null!;

    public async Task InitializeAsync() => _store = await server.CreateStoreAsync(_time);

    public Task DisposeAsync() => server.DropAsync(_store);

    [Fact]
    public async Task Parallel_saves_of_different_attributes_all_land()
    {
        var session = NewSession();
        await _store.CreateAsync(session);
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var saves = Enumerable.Range(0, Writers).Select(i => Task.Run(async () =>
        {
            await start.Task;
            return await _store.SaveAsync(new SessionChanges(session.Id!, Values(($"key{i}", $"value{i}"))));
        })).ToArray();
        start.SetResult();
        var results = await Task.WhenAll(saves);

        Assert.All(results, r => Assert.Equal(SessionSaveResult.Saved, r));
        var loaded = await _store.LoadAsync(session.Id!);
        Assert.Equal(Writers, loaded!.Attributes.Count);
        Assert.Equal(Writers, loaded.Version);
        for (var i = 0; i < Writers; i++)
        {
            Assert.Equal($"value{i}", Text(loaded.Attributes[$"key{i}"]));
        }
    }

    [Fact]
    public async Task Parallel_atomic_updates_of_one_attribute_lose_nothing()
    {
        var session = NewSession();
        await _store.CreateAsync(session);
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var updates = Enumerable.Range(0, Writers).Select(_ => Task.Run(async () =>
        {
            await start.Task;
            await _store.UpdateAttributeAsync(session.Id!, "counter", current: null, Increment);
        })).ToArray();
        start.SetResult();
        await Task.WhenAll(updates);

        var loaded = await _store.LoadAsync(session.Id!);
        Assert.Equal(Writers, BinaryPrimitives.ReadInt64LittleEndian(loaded!.Attributes["counter"]));
    }

    [Fact]
    public async Task Cleanup_on_two_instances_deletes_each_expired_session_once_and_no_live_one()
    {
        const int expired = 3000;
        const int live = 300;
        var now = _time.GetUtcNow();
        await InsertSessionsAsync(expired, expiresAt: now.AddMinutes(1));
        var liveIds = await InsertSessionsAsync(live, expiresAt: now.AddHours(1));
        _time.Advance(TimeSpan.FromMinutes(2));

        await using var otherDataSource = PostgresTestServer.NewDataSource(server.Server.ConnectionString);
        var options = PostgresTestServer.NewOptions(otherDataSource);
        options.TablePrefix = TablePrefixOf(_store);
        options.CleanupBatchSize = 50;
        await using var first = new PostgresSessionStore(options, _time);
        options.DataSource = server.DataSource;
        await using var second = new PostgresSessionStore(options, _time);
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var cleanups = new[] { first, second }.Select(store => Task.Run(async () =>
        {
            await start.Task;
            return await store.CleanupExpiredAsync();
        })).ToArray();
        var touches = Task.Run(async () =>
        {
            // Live sessions are saved while the cleanups run; none of them may disappear.
            await start.Task;
            foreach (var id in liveIds)
            {
                Assert.Equal(SessionSaveResult.Saved, await _store.SaveAsync(new SessionChanges(id, Values(("touched", "yes")))));
            }
        });
        start.SetResult();
        var counts = await Task.WhenAll(cleanups);
        await touches;

        Assert.Equal(expired, counts.Sum());
        Assert.Equal(live, await _store.CountAsync());
        Assert.Equal(live, await server.ScalarAsync($"SELECT count(*) FROM {_store.SessionsTableName}"));
        Assert.Equal(live, await server.ScalarAsync($"SELECT count(*) FROM {_store.AttributesTableName}"));
    }

    private static byte[]? Increment(byte[]? current)
    {
        var value = current is null ? 0 : BinaryPrimitives.ReadInt64LittleEndian(current);
        var next = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(next, value + 1);
        return next;
    }

    private async Task<string[]> InsertSessionsAsync(int count, DateTimeOffset expiresAt)
    {
        var ids = Enumerable.Range(0, count).Select(_ => SessionId.Create()).ToArray();
        var now = _time.GetUtcNow();
        await using var command = server.DataSource.CreateCommand(
            $"""
            INSERT INTO {_store.SessionsTableName} (id, created_at, last_accessed_at, idle_timeout, absolute_expires_at, expires_at, principal, version)
            SELECT id, $2, $2, interval '30 minutes', $3, $3, NULL, 0 FROM unnest($1::text[]) AS id
            """);
        // Rows are keyed by handles (layout 3): the store keeps no ids.
        command.Parameters.Add(new NpgsqlParameter { Value = ids.Select(SessionHandle.FromId).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = now });
        command.Parameters.Add(new NpgsqlParameter { Value = expiresAt });
        await command.ExecuteNonQueryAsync();
        return ids;
    }

    private SessionSnapshot NewSession()
        => SessionSnapshot.CreateNew(SessionId.Create(), _time.GetUtcNow(), TimeSpan.FromMinutes(30), TimeSpan.FromHours(8));
}
