using System.Diagnostics;
using ClusterSession.Testing.Logging;
using ClusterSession.Testing.Servers;
using StackExchange.Redis;
using Xunit;

namespace ClusterSession.Redis.Tests;

/// <summary>A store whose server hangs, and what failures put into exceptions and logs.</summary>
public sealed class HangAndLeakTests : IAsyncLifetime
{
    private static readonly TimeSpan Slack = TimeSpan.FromSeconds(2);
    private readonly HungServer _hung = new();
    private readonly RedisServerFixture _server = new();

    public Task InitializeAsync() => _server.InitializeAsync();

    public async Task DisposeAsync()
    {
        await _hung.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task A_hung_server_fails_the_call_as_timed_out_at_the_operation_deadline()
    {
        var timeout = TimeSpan.FromSeconds(1);
        await using var store = new RedisSessionStore(new RedisSessionStoreOptions { Configuration = $"127.0.0.1:{_hung.Port}", OperationTimeout = timeout });

        foreach (var attempt in new[] { "first", "second" })
        {
            var watch = Stopwatch.StartNew();
            var error = await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.LoadAsync(SessionId.Create()));

            Assert.InRange(watch.Elapsed, timeout - TimeSpan.FromMilliseconds(50), timeout + Slack);
            Assert.Contains("did not complete a load within 1000 ms", error.Message, StringComparison.Ordinal);
            Assert.Contains("OperationTimeout", error.Message, StringComparison.Ordinal);
            Assert.True(_hung.Accepted >= 1, $"The {attempt} call never reached the hung server.");
        }
    }

    [Fact]
    public async Task The_callers_token_ends_a_hung_call_before_the_stores_own_deadline()
    {
        await using var store = new RedisSessionStore(new RedisSessionStoreOptions { Configuration = $"127.0.0.1:{_hung.Port}", OperationTimeout = TimeSpan.FromSeconds(60) });
        using var caller = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        var watch = Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await store.LoadAsync(SessionId.Create(), caller.Token));

        Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(300) + Slack);
    }

    [Fact]
    public async Task An_application_multiplexer_with_exception_detail_on_gets_its_messages_scrubbed_of_keys()
    {
        Assert.True(_server.OwnsProcess, "The test pauses its own redis-server; unset CLUSTERSESSION_REDIS.");

        // The application's own multiplexer, with StackExchange.Redis's detail (command and key) in its messages.
        var configuration = ConfigurationOptions.Parse(_server.Configuration);
        configuration.AsyncTimeout = 300;
        configuration.IncludeDetailInExceptions = true;
        await using var multiplexer = await ConnectionMultiplexer.ConnectAsync(configuration);
        var log = new ListLoggerProvider();
        await using var store = new RedisSessionStore(multiplexer, new RedisSessionStoreOptions { KeyPrefix = "leak:", OperationTimeout = TimeSpan.FromSeconds(2) }, logger: log.CreateLogger<RedisSessionStore>());
        var session = SessionSnapshot.CreateNew(SessionId.Create(), DateTimeOffset.UtcNow, TimeSpan.FromMinutes(20), TimeSpan.FromHours(8));
        Assert.True(await store.CreateAsync(session));
        var id = session.Id!;

        await _server.PauseAsync();
        try
        {
            // The precondition that makes this test matter: the raw message quotes the key, and so the id.
            var raw = await Assert.ThrowsAsync<RedisTimeoutException>(async () => await multiplexer.GetDatabase().HashGetAllAsync($"leak:s:{{{id}}}"));
            Assert.Contains(id, raw.ToString(), StringComparison.Ordinal);

            var errors = new List<Exception>
            {
                await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.LoadAsync(id)),
                await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.SaveAsync(new SessionChanges(id, new Dictionary<string, byte[]> { ["secret-name"] = "secret-value"u8.ToArray() }))),
                await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.CompareAndSetAttributeAsync(id, "secret-name", null, "secret-value"u8.ToArray())),
                await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.DeleteAsync(id)),
            };

            // Said as what happened: the multiplexer timed the command out (300 ms), or the store's deadline passed (2 s).
            Assert.All(errors, e => Assert.Matches("StackExchange.Redis timed the command out|did not complete a .* within 2000 ms", e.Message));
            Assert.Contains(errors, e => e.ToString().Contains("message scrubbed of keys", StringComparison.Ordinal));
            Secrets.AssertAbsent(log, errors, id, "secret-name", "secret-value");
            Assert.Empty(log.Entries);
        }
        finally
        {
            await _server.ResumeAsync();
        }
    }

    [Fact]
    public async Task A_redis_outage_puts_no_id_name_or_value_in_exceptions_and_the_store_logs_nothing_per_call()
    {
        Assert.True(_server.OwnsProcess, "The outage test needs a redis-server it can kill; unset CLUSTERSESSION_REDIS.");
        var time = TestStores.NewClock();
        var log = new ListLoggerProvider();
        await using var store = new RedisSessionStore(
            new RedisSessionStoreOptions { Configuration = _server.Configuration, KeyPrefix = TestStores.UniquePrefix(), OperationTimeout = TimeSpan.FromSeconds(1) },
            time,
            log.CreateLogger<RedisSessionStore>());
        var session = SessionSnapshot.CreateNew(SessionId.Create(), time.GetUtcNow(), TimeSpan.FromMinutes(20), TimeSpan.FromHours(8), principal: "secret-principal");
        Assert.True(await store.CreateAsync(session));

        _server.Kill();

        var errors = new List<Exception>
        {
            await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.LoadAsync(session.Id!)),
            await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["secret-name"] = "secret-value"u8.ToArray() }))),
            await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.CompareAndSetAttributeAsync(session.Id!, "secret-name", null, "secret-value"u8.ToArray())),
            await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.ChangeIdAsync(session.Id!, SessionId.Create())),
            await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.FindByPrincipalAsync("secret-principal")),
        };

        Assert.All(errors, e => Assert.Contains("Redis session store", e.Message, StringComparison.Ordinal));
        Secrets.AssertAbsent(log, errors, session.Id!, "secret-name", "secret-value");
        Assert.Empty(log.Entries);
    }
}
