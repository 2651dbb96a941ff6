using System.Diagnostics;
using ClusterSession.Testing.Logging;
using ClusterSession.Testing.Servers;
using Microsoft.Extensions.Time.Testing;
using static ClusterSession.Postgres.Tests.PostgresSessionStoreTests;

namespace ClusterSession.Postgres.Tests;

/// <summary>A store whose server hangs or stops, and what its failures put into exceptions and logs.</summary>
public sealed class PostgresHangAndLeakTests : IAsyncLifetime
{
    private static readonly TimeSpan Slack = TimeSpan.FromSeconds(2);
    private readonly HungServer _hung = new();
    private readonly PostgresServerFixture _server = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero));

    public Task InitializeAsync() => _server.StartOwnServerAsync();

    public async Task DisposeAsync()
    {
        await _hung.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task A_hung_server_fails_the_call_as_timed_out_at_the_deadline_and_the_connection_attempt_ends_with_it()
    {
        await using var store = HungStore(TimeSpan.FromSeconds(1));

        var watch = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<SessionStoreUnavailableException>(() => store.LoadAsync(SessionId.Create()).AsTask());

        Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(950), TimeSpan.FromSeconds(1) + Slack);
        Assert.Contains("did not complete a load within 1000 ms", error.Message, StringComparison.Ordinal);
        await ServerProcess.UntilAsync(() => Task.FromResult(_hung.ClosedByClient >= 1), TimeSpan.FromSeconds(5), "the cancelled call closes its connection");
    }

    [Fact]
    public async Task The_callers_token_ends_a_hung_call_before_the_stores_own_deadline()
    {
        await using var store = HungStore(TimeSpan.FromSeconds(2));
        using var caller = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        var watch = Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.LoadAsync(SessionId.Create(), caller.Token).AsTask());

        Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(300) + Slack);

        // Npgsql cannot interrupt its handshake; the store set its connect Timeout to the 2 s deadline, so the attempt ends there.
        await ServerProcess.UntilAsync(() => Task.FromResult(_hung.ClosedByClient >= 1), TimeSpan.FromSeconds(5), "the abandoned connection attempt is closed at the store's deadline");
    }

    [Fact]
    public async Task A_postgres_outage_puts_no_id_name_or_value_in_exceptions_or_logs_and_only_the_background_cleanup_logs()
    {
        var log = new ListLoggerProvider();
        await using var store = new PostgresSessionStore(
            new PostgresSessionStoreOptions { ConnectionString = _server.ConnectionString, CommandTimeout = TimeSpan.FromSeconds(2), CleanupInterval = TimeSpan.FromMinutes(1) },
            _time,
            log.CreateLogger<PostgresSessionStore>());
        await store.CreateSchemaAsync();
        var session = SessionSnapshot.CreateNew(SessionId.Create(), _time.GetUtcNow(), TimeSpan.FromMinutes(30), TimeSpan.FromHours(8), Values(("secret-name", "secret-value")), "secret-principal");
        Assert.True(await store.CreateAsync(session));

        await _server.StopAsync();

        var errors = new List<Exception>
        {
            await Assert.ThrowsAsync<SessionStoreUnavailableException>(() => store.LoadAsync(session.Id!).AsTask()),
            await Assert.ThrowsAsync<SessionStoreUnavailableException>(() => store.SaveAsync(new SessionChanges(session.Id!, Values(("secret-name", "secret-value")))).AsTask()),
            await Assert.ThrowsAsync<SessionStoreUnavailableException>(() => store.CompareAndSetAttributeAsync(session.Id!, "secret-name", null, Values(("x", "secret-value"))["x"]).AsTask()),
            await Assert.ThrowsAsync<SessionStoreUnavailableException>(() => store.ChangeIdAsync(session.Id!, SessionId.Create()).AsTask()),
            await Assert.ThrowsAsync<SessionStoreUnavailableException>(() => store.FindByPrincipalAsync("secret-principal").AsTask()),
            await Assert.ThrowsAsync<SessionStoreUnavailableException>(() => store.DeleteAsync(session.Id!).AsTask()),
        };

        // The background cleanup has no caller to throw to: it is the one thing that logs a failure.
        _time.Advance(TimeSpan.FromMinutes(1));
        await ServerProcess.UntilAsync(() => Task.FromResult(log.Entries.Any(e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Warning)), TimeSpan.FromSeconds(10), "the failed cleanup is logged");

        Assert.All(errors, e => Assert.Contains("PostgreSQL session store", e.Message, StringComparison.Ordinal));
        Secrets.AssertAbsent(log, errors, session.Id!, "secret-name", "secret-value", "secret-principal");
        Assert.All(log.Entries.Where(e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Warning), e => Assert.Contains("cleanup", e.Message, StringComparison.OrdinalIgnoreCase));
    }

    private PostgresSessionStore HungStore(TimeSpan timeout) => new(
        new PostgresSessionStoreOptions
        {
            ConnectionString = $"Host=127.0.0.1;Port={_hung.Port};Username=app;Password=app;Timeout=60;Pooling=false",
            CommandTimeout = timeout,
            CleanupInterval = Timeout.InfiniteTimeSpan,
        },
        _time);
}
