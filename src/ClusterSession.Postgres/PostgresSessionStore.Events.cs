using Npgsql;
using static ClusterSession.Postgres.PostgresParameters;

namespace ClusterSession.Postgres;

/// <content>
/// The session lifecycle event channel (<see cref="ISessionEventChannel"/>): events go out with <c>pg_notify</c> on the
/// tables' event channel, expiries are notified by the cleanup in the statement that deletes them, and a claim is a row
/// of <c>{prefix}event_claims</c>. Each subscription LISTENs on a connection of its own (not the near cache's), opened
/// again with a backoff when it fails.
/// </content>
public sealed partial class PostgresSessionStore : ISessionEventChannel
{
    /// <summary>The table of lifecycle event claims (for tests and tools).</summary>
    internal string EventClaimsTableName => _sql.EventClaimsTable;

    /// <inheritdoc />
    public Task PublishAsync(SessionLifecycleEvent sessionEvent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sessionEvent);
        return RunAsync(
            "publish_event",
            (Store: this, Payload: sessionEvent.ToWireFormat()),
            static async (s, token) =>
            {
                var command = s.Store.CreateCommand("SELECT pg_notify($1, $2)", Text(s.Store._sql.EventChannel), Text(s.Payload));
                await using (command.ConfigureAwait(false))
                {
                    return await command.ExecuteNonQueryAsync(token).ConfigureAwait(false);
                }
            },
            cancellationToken).AsTask();
    }

    /// <inheritdoc />
    public Task<bool> TryClaimAsync(string eventId, TimeSpan hold, CancellationToken cancellationToken = default)
    {
        SessionStoreContract.CheckClaim(eventId, hold);
        return RunAsync(
            "claim_event",
            (Store: this, EventId: eventId, Hold: hold),
            static async (s, token) =>
            {
                var command = s.Store.CreateCommand(s.Store._sql.ClaimEvent, Text(s.EventId), Interval(s.Hold));
                await using (command.ConfigureAwait(false))
                {
                    return await command.ExecuteNonQueryAsync(token).ConfigureAwait(false) == 1;
                }
            },
            cancellationToken).AsTask();
    }

    /// <inheritdoc />
    /// <remarks>
    /// Expiries are reported by the cleanup (<see cref="CleanupExpiredAsync"/>, on <see cref="PostgresSessionStoreOptions.CleanupInterval"/>
    /// of any node), so an expiry is reported up to one cleanup interval after the session expired.
    /// </remarks>
    public async Task<IAsyncDisposable> SubscribeAsync(Action<SessionLifecycleEvent> handler, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handler);

        // The tables (and the claims table) exist before anyone listens or claims.
        await RunAsync("subscribe_events", 0, static (_, _) => Task.FromResult(0), cancellationToken).ConfigureAwait(false);
        var listener = new EventListener(this, handler);
        await listener.StartAsync(cancellationToken).ConfigureAwait(false);
        return listener;
    }

    /// <summary>
    /// One subscription: its LISTEN connection (opened again with a backoff after a failure), the loop that reads it, and
    /// what stops it (its own disposal or the store's).
    /// </summary>
    private sealed class EventListener : IAsyncDisposable
    {
        private readonly PostgresSessionStore _store;
        private readonly Action<SessionLifecycleEvent> _handler;
        private readonly CancellationTokenSource _stopping;
        private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private Task _loop = Task.CompletedTask;
        private int _failures;
        private int _disposed;

        public EventListener(PostgresSessionStore store, Action<SessionLifecycleEvent> handler)
        {
            _store = store;
            _handler = handler;
            _stopping = CancellationTokenSource.CreateLinkedTokenSource(store._disposing.Token);
        }

        /// <summary>Starts the loop and waits, under the store's deadline, until it LISTENs; disposes itself when it cannot.</summary>
        public async Task StartAsync(CancellationToken cancellationToken)
        {
            _loop = Task.Run(() => ListenAsync(_stopping.Token), CancellationToken.None);
            try
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                deadline.CancelAfter(_store._timeout);
                await _listening.Task.WaitAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                await DisposeAsync().ConfigureAwait(false);
                throw new SessionStoreUnavailableException($"Could not LISTEN for session lifecycle events on channel {_store._sql.EventChannel} within {_store._timeout}; check the database.");
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                return;
            }

            await _stopping.CancelAsync().ConfigureAwait(false);
            await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            _stopping.Dispose();
        }

        private async Task ListenAsync(CancellationToken stopping)
        {
            while (!stopping.IsCancellationRequested)
            {
                NpgsqlConnection? connection = null;
                try
                {
                    connection = await _store._dataSource.OpenConnectionAsync(stopping).ConfigureAwait(false);
                    connection.Notification += OnNotification;
                    await _store.ExecuteOnListenerAsync(connection, $"LISTEN \"{_store._sql.EventChannel}\"", stopping).ConfigureAwait(false);
                    _listening.TrySetResult();
                    _failures = 0;
                    while (true)
                    {
                        if (!await connection.WaitAsync(_store._listenerProbeInterval, stopping).ConfigureAwait(false))
                        {
                            // A connection whose peer vanished stays silent: ask it.
                            await _store.ExecuteOnListenerAsync(connection, "SELECT 1", stopping).ConfigureAwait(false);
                        }
                    }
                }
                catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                {
                    // The subscription or the store was disposed.
                }
#pragma warning disable CA1031 // The listener must outlive any failure: it reports it and tries again.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    _failures++;
                    PostgresLog.EventListenerFailed(_store._logger, ex, _store._sql.EventChannel, ReconnectDelay(_failures));
                }
                finally
                {
                    if (connection is not null)
                    {
                        connection.Notification -= OnNotification;
                        await _store.ReturnListenerAsync(connection).ConfigureAwait(false);
                    }
                }

                if (_failures > 0 && !stopping.IsCancellationRequested)
                {
                    try
                    {
                        await Task.Delay(ReconnectDelay(_failures), stopping).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        // Disposed meanwhile.
                    }
                }
            }
        }

        private void OnNotification(object sender, NpgsqlNotificationEventArgs e)
        {
            if (!SessionLifecycleEvent.TryParse(e.Payload, out var sessionEvent))
            {
                return;
            }

            try
            {
                _handler(sessionEvent);
            }
#pragma warning disable CA1031 // A failing handler must not stop the listener.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                PostgresLog.EventHandlerFailed(_store._logger, ex);
            }
        }
    }
}
