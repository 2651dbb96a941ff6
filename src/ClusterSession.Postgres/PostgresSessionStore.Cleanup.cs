using System.Globalization;
using Npgsql;
using static ClusterSession.Postgres.PostgresParameters;

namespace ClusterSession.Postgres;

/// <content>The cleanup of expired sessions: on demand, and on a timer of the store's clock.</content>
public sealed partial class PostgresSessionStore
{
    /// <summary>
    /// Deletes every expired session, in batches of <see cref="PostgresSessionStoreOptions.CleanupBatchSize"/>
    /// (one short transaction each, each under the store's deadline). Safe to run on several instances at once:
    /// each expired session is deleted by exactly one of them, and live sessions are never touched.
    /// </summary>
    /// <returns>The number of sessions this call deleted.</returns>
    public Task<long> CleanupExpiredAsync(CancellationToken cancellationToken = default) => _cleanup.DeleteExpiredAsync(cancellationToken);

    /// <summary>
    /// The cleanup's own state: its batch size, its timer (none when <see cref="PostgresSessionStoreOptions.CleanupInterval"/>
    /// is infinite) and the one background run at a time that the timer starts.
    /// </summary>
    private sealed class ExpiredSessionCleanup
    {
        private readonly PostgresSessionStore _store;
        private readonly int _batchSize;
        private readonly ITimer? _timer;
        private Task _running = Task.CompletedTask;
        private int _isRunning;

        public ExpiredSessionCleanup(PostgresSessionStore store, PostgresSessionStoreOptions options)
        {
            _store = store;
            _batchSize = options.CleanupBatchSize;
            if (options.CleanupInterval != Timeout.InfiniteTimeSpan)
            {
                _timer = store._timeProvider.CreateTimer(
                    static state => ((ExpiredSessionCleanup)state!).OnTimer(), this, options.CleanupInterval, options.CleanupInterval);
            }
        }

        public async Task<long> DeleteExpiredAsync(CancellationToken cancellationToken)
        {
            long total = 0;
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var deleted = await _store.RunAsync("cleanup", this, static (cleanup, token) => cleanup.DeleteBatchAsync(token), cancellationToken).ConfigureAwait(false);
                total += deleted;
                if (deleted < _batchSize)
                {
                    break;
                }
            }

            if (total > 0)
            {
                PostgresLog.CleanupDeleted(_store._logger, total, _store._sql.SessionsTable);
            }

            return total;
        }

        /// <summary>Stops the timer: no run starts after this.</summary>
        public async Task StopTimerAsync()
        {
            if (_timer is not null)
            {
                await _timer.DisposeAsync().ConfigureAwait(false);
            }
        }

        /// <summary>Waits for a run the timer started (the store's disposal has cancelled it by then).</summary>
        public async Task WaitAsync()
        {
            try
            {
                await _running.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // The cleanup was cancelled by the disposal itself.
            }
        }

        private async Task<int> DeleteBatchAsync(CancellationToken token)
        {
            var command = _store.CreateCommand(_store._sql.Cleanup, Clock(_store._timeProvider), Int(_batchSize));
            await using (command.ConfigureAwait(false))
            {
                var deleted = Convert.ToInt32(await command.ExecuteScalarAsync(token).ConfigureAwait(false), CultureInfo.InvariantCulture);
                if (deleted < _batchSize)
                {
                    // The last batch of a run: the event claims whose hold ran out go too (few rows, by the primary key's order).
                    var prune = _store.CreateCommand(_store._sql.PruneClaims);
                    await using (prune.ConfigureAwait(false))
                    {
                        await prune.ExecuteNonQueryAsync(token).ConfigureAwait(false);
                    }
                }

                return deleted;
            }
        }

        private void OnTimer()
        {
            if (Volatile.Read(ref _store._disposed) != 0 || Interlocked.Exchange(ref _isRunning, 1) != 0)
            {
                return;
            }

            _running = RunInBackgroundAsync();
        }

        private async Task RunInBackgroundAsync()
        {
            var disposing = _store._disposing;
            try
            {
                await DeleteExpiredAsync(disposing.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (disposing.IsCancellationRequested)
            {
                // Disposal stopped it.
            }
            catch (Exception ex) when (ex is ClusterSessionException or InvalidOperationException or NpgsqlException)
            {
                // A background task has no caller to throw to: this is its one log line (no session data in it).
                PostgresLog.CleanupFailed(_store._logger, ex, _store._sql.SessionsTable);
            }
            finally
            {
                Volatile.Write(ref _isRunning, 0);
            }
        }
    }
}
