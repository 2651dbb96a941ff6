using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>
/// The store's multiplexer: either the application's own (never disposed here) or one the store creates
/// from <see cref="RedisSessionStoreOptions.Configuration"/> on first use, owns and disposes.
/// </summary>
internal sealed class RedisConnection : IAsyncDisposable
{
    private readonly RedisSessionStoreOptions _options;
    private readonly Lock _connectLock = new();
    private IConnectionMultiplexer? _multiplexer;
    private Task<IConnectionMultiplexer>? _connecting;
    private bool _disposed;

    public RedisConnection(RedisSessionStoreOptions options, IConnectionMultiplexer? multiplexer)
    {
        _options = options;
        _multiplexer = multiplexer;
        OwnsMultiplexer = multiplexer is null && options.ConnectionMultiplexerFactory is null;
    }

    /// <summary>
    /// Whether the store created the multiplexer. Only then are StackExchange.Redis's exception details
    /// (command and key, and so the session id) known to be off; otherwise the store scrubs messages itself.
    /// </summary>
    public bool OwnsMultiplexer { get; }

    /// <summary>
    /// The multiplexer, connecting it on first use. The connection attempt is shared and outlives a caller
    /// whose deadline passes, so an impatient caller never leaves a half-made multiplexer behind.
    /// </summary>
    public ValueTask<IConnectionMultiplexer> GetAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_multiplexer is { } multiplexer)
        {
            return new(multiplexer);
        }

        Task<IConnectionMultiplexer> connecting;
        lock (_connectLock)
        {
            connecting = _connecting ??= ConnectAsync();
        }

        return new(connecting.WaitAsync(cancellationToken));
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (!OwnsMultiplexer)
        {
            return;
        }

        if (_multiplexer is { } multiplexer)
        {
            await multiplexer.DisposeAsync().ConfigureAwait(false);
        }
        else
        {
            // A connection attempt still running (to a server that does not answer) is disposed when it ends.
            _ = _connecting?.ContinueWith(
                static t => t.Result.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
        }
    }

    private async Task<IConnectionMultiplexer> ConnectAsync()
    {
        try
        {
            var multiplexer = _options.ConnectionMultiplexerFactory is { } factory
                ? await factory().ConfigureAwait(false)
                : await ConnectionMultiplexer.ConnectAsync(Configure(_options)).ConfigureAwait(false);
            _multiplexer = multiplexer;
            return multiplexer;
        }
        catch
        {
            // Let the next call try again.
            lock (_connectLock)
            {
                _connecting = null;
            }

            throw;
        }
    }

    private static ConfigurationOptions Configure(RedisSessionStoreOptions options)
    {
        var configuration = ConfigurationOptions.Parse(options.Configuration!);

        // Stay up while Redis is down: commands fail fast with our typed error and the
        // multiplexer reconnects in the background when the server is back.
        configuration.AbortOnConnectFail = false;

        // StackExchange.Redis's default queues commands while no connection is available and lets them wait for
        // AsyncTimeout: against a dead Redis every call would take the whole OperationTimeout. Fail them at once
        // instead; a command that never left the client is retried by the store while some node is connected (a
        // failover or a reconnect in progress), within the same deadline.
        configuration.BacklogPolicy = BacklogPolicy.FailFast;

        // The multiplexer times out a command that the store's deadline abandoned, so nothing waits longer.
        var timeoutMs = (int)options.OperationTimeout.TotalMilliseconds;
        configuration.AsyncTimeout = timeoutMs;
        configuration.SyncTimeout = timeoutMs;
        configuration.ConnectTimeout = Math.Min(configuration.ConnectTimeout, timeoutMs);

        // Session keys contain the session id: keep commands and keys out of exception messages (and so out of logs).
        configuration.IncludeDetailInExceptions = false;
        configuration.IncludePerformanceCountersInExceptions = false;
        return configuration;
    }
}
