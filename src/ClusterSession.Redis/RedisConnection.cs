using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>
/// The store's multiplexer: either the application's own (never disposed here) or one the store creates
/// from <see cref="RedisSessionStoreOptions.Configuration"/> on first use, owns and disposes.
/// </summary>
internal sealed class RedisConnection : IAsyncDisposable
{
    private readonly RedisSessionStoreOptions _options;
    private readonly SemaphoreSlim _connectLock = new(1, 1);
    private IConnectionMultiplexer? _multiplexer;
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

    /// <summary>The multiplexer, connecting it on first use.</summary>
    public ValueTask<IConnectionMultiplexer> GetAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _multiplexer is { } multiplexer ? new(multiplexer) : new(ConnectAsync(cancellationToken));
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (OwnsMultiplexer && _multiplexer is { } multiplexer)
        {
            await multiplexer.DisposeAsync().ConfigureAwait(false);
        }

        _connectLock.Dispose();
    }

    private async Task<IConnectionMultiplexer> ConnectAsync(CancellationToken cancellationToken)
    {
        await _connectLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_multiplexer is null)
            {
                _multiplexer = _options.ConnectionMultiplexerFactory is { } factory
                    ? await factory().WaitAsync(cancellationToken).ConfigureAwait(false)
                    : await ConnectionMultiplexer.ConnectAsync(Configure(_options)).WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            return _multiplexer;
        }
        finally
        {
            _connectLock.Release();
        }
    }

    private static ConfigurationOptions Configure(RedisSessionStoreOptions options)
    {
        var configuration = ConfigurationOptions.Parse(options.Configuration!);

        // Stay up while Redis is down: commands fail fast with our typed error and the
        // multiplexer reconnects in the background when the server is back.
        configuration.AbortOnConnectFail = false;

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
