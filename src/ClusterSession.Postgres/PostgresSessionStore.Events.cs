using Npgsql;
using static ClusterSession.Postgres.PostgresParameters;

namespace ClusterSession.Postgres;

/// <content>
/// The session lifecycle event channel (<see cref="ISessionEventChannel"/>): events go out with <c>pg_notify</c> on the
/// tables' event channel, expiries are notified by the cleanup in the statement that deletes them, and a claim is a row
/// of <c>{prefix}event_claims</c>. Each subscription LISTENs on a connection of its own, opened again with a backoff
/// when it fails.
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
        ArgumentException.ThrowIfNullOrEmpty(eventId);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(hold, TimeSpan.Zero);
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
        var stopping = CancellationTokenSource.CreateLinkedTokenSource(_disposing.Token);
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var loop = Task.Run(() => ListenForEventsAsync(handler, listening, stopping.Token), CancellationToken.None);
        var subscription = new EventSubscription(stopping, loop);
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(_timeout);
            await listening.Task.WaitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await subscription.DisposeAsync().ConfigureAwait(false);
            throw new SessionStoreUnavailableException($"Could not LISTEN for session lifecycle events on channel {_sql.EventChannel} within {_timeout}; check the database.");
        }

        return subscription;
    }

    private async Task ListenForEventsAsync(Action<SessionLifecycleEvent> handler, TaskCompletionSource listening, CancellationToken stopping)
    {
        var failures = 0;
        void OnEvent(object sender, NpgsqlNotificationEventArgs e)
        {
            if (!SessionLifecycleEvent.TryParse(e.Payload, out var sessionEvent))
            {
                return;
            }

            try
            {
                handler(sessionEvent);
            }
#pragma warning disable CA1031 // A failing handler must not stop the listener.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                PostgresLog.EventHandlerFailed(_logger, ex);
            }
        }

        while (!stopping.IsCancellationRequested)
        {
            NpgsqlConnection? connection = null;
            try
            {
                connection = await _dataSource.OpenConnectionAsync(stopping).ConfigureAwait(false);
                connection.Notification += OnEvent;
                await ExecuteOnListenerAsync(connection, $"LISTEN \"{_sql.EventChannel}\"", stopping).ConfigureAwait(false);
                listening.TrySetResult();
                failures = 0;
                while (true)
                {
                    if (!await connection.WaitAsync(_listenerProbeInterval, stopping).ConfigureAwait(false))
                    {
                        // A connection whose peer vanished stays silent: ask it.
                        await ExecuteOnListenerAsync(connection, "SELECT 1", stopping).ConfigureAwait(false);
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
                failures++;
                PostgresLog.EventListenerFailed(_logger, ex, _sql.EventChannel, ReconnectDelay(failures));
            }
            finally
            {
                if (connection is not null)
                {
                    connection.Notification -= OnEvent;
                    await ReturnListenerAsync(connection).ConfigureAwait(false);
                }
            }

            if (failures > 0 && !stopping.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(ReconnectDelay(failures), stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // Disposed meanwhile.
                }
            }
        }
    }

    private sealed class EventSubscription(CancellationTokenSource stopping, Task loop) : IAsyncDisposable
    {
        private int _disposed;

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                return;
            }

            await stopping.CancelAsync().ConfigureAwait(false);
            await loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            stopping.Dispose();
        }
    }
}
