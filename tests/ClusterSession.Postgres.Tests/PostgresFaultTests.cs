using ClusterSession.Testing.Servers;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using static ClusterSession.Postgres.Tests.PostgresSessionStoreTests;

namespace ClusterSession.Postgres.Tests;

/// <summary>Outages surface as <see cref="SessionStoreUnavailableException"/>; a server of its own, because these tests stop it.</summary>
public sealed class PostgresFaultTests : IAsyncLifetime
{
    private readonly PostgresServerFixture _server = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero));

    public Task InitializeAsync() => _server.StartOwnServerAsync();

    public Task DisposeAsync() => _server.DisposeAsync();

    [Fact]
    public async Task A_stopped_server_gives_the_typed_error_and_the_store_works_again_after_a_restart()
    {
        await using var store = new PostgresSessionStore(
            new PostgresSessionStoreOptions { ConnectionString = _server.ConnectionString, CommandTimeout = TimeSpan.FromSeconds(2), CleanupInterval = Timeout.InfiniteTimeSpan },
            _time);
        await store.CreateSchemaAsync();
        var session = SessionSnapshot.CreateNew(SessionId.Create(), _time.GetUtcNow(), TimeSpan.FromMinutes(30), TimeSpan.FromHours(8), Values(("a", "1")));
        Assert.True(await store.CreateAsync(session));

        await _server.StopAsync();

        var loadError = await Assert.ThrowsAsync<SessionStoreUnavailableException>(() => store.LoadAsync(session.Id!).AsTask());
        Assert.Contains("could not be reached during a load", loadError.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<SessionStoreUnavailableException>(() => store.SaveAsync(new SessionChanges(session.Id!, Values(("b", "2")))).AsTask());
        await Assert.ThrowsAsync<SessionStoreUnavailableException>(() => store.CleanupExpiredAsync());

        await _server.StartAsync();

        var loaded = await UntilAsync(() => store.LoadAsync(session.Id!).AsTask());
        Assert.Equal("1", Text(loaded.Attributes["a"]));
        Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(session.Id!, Values(("b", "2")))));
    }

    [Fact]
    public async Task An_exhausted_pool_gives_the_typed_error()
    {
        var builder = new NpgsqlDataSourceBuilder(_server.ConnectionString);
        builder.ConnectionStringBuilder.MaxPoolSize = 1;
        builder.ConnectionStringBuilder.Timeout = 3;
        await using var dataSource = builder.Build();
        await using var store = await PostgresTestServer.CreateStoreAsync(dataSource, _time);
        await using var held = await dataSource.OpenConnectionAsync();

        var error = await Assert.ThrowsAsync<SessionStoreUnavailableException>(() => store.CountAsync().AsTask());

        Assert.Contains("Maximum Pool Size", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_command_timeout_gives_the_typed_error()
    {
        await using var dataSource = PostgresTestServer.NewDataSource(_server.ConnectionString);
        await using var store = await PostgresTestServer.CreateStoreAsync(dataSource, _time, configure: o => o.CommandTimeout = TimeSpan.FromSeconds(1));
        var session = SessionSnapshot.CreateNew(SessionId.Create(), _time.GetUtcNow(), TimeSpan.FromMinutes(30), TimeSpan.FromHours(8));
        await store.CreateAsync(session);

        // Another transaction holds the session row, so the save waits on its lock until the command timeout.
        await using var blocker = await dataSource.OpenConnectionAsync();
        await using var transaction = await blocker.BeginTransactionAsync();
        await using (var lockRow = new NpgsqlCommand($"SELECT FROM {store.SessionsTableName} WHERE id = $1 FOR UPDATE", blocker, transaction))
        {
            lockRow.Parameters.Add(new NpgsqlParameter { Value = session.Handle });
            await lockRow.ExecuteNonQueryAsync();
        }

        await Assert.ThrowsAsync<SessionStoreUnavailableException>(() => store.SaveAsync(new SessionChanges(session.Id!, Values(("a", "1")))).AsTask());
        await transaction.RollbackAsync();
        Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(session.Id!, Values(("a", "1")))));
    }

    private static async Task<T> UntilAsync<T>(Func<Task<T?>> attempt)
        where T : class
    {
        // Pooled connections broken by the restart fail once each; a deadline, not a sleep, bounds the wait.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                if (await attempt() is { } result)
                {
                    return result;
                }
            }
            catch (SessionStoreUnavailableException) when (DateTime.UtcNow < deadline)
            {
            }

            if (DateTime.UtcNow >= deadline)
            {
                throw new TimeoutException("The store did not recover within 30 seconds of the restart.");
            }

            await Task.Yield();
        }
    }
}
