using System.Globalization;
using Npgsql;
using static ClusterSession.Postgres.PostgresParameters;

namespace ClusterSession.Postgres;

/// <content>The cleanup of expired sessions: on demand, and on a timer of the store's clock.</content>
public sealed partial class PostgresSessionStore
{
    private readonly int _cleanupBatchSize;
    private readonly ITimer? _cleanupTimer;
    private readonly CancellationTokenSource _disposing = new();
    private Task _cleanupTask = Task.CompletedTask;
    private int _cleanupRunning;
    private int _disposed;

    /// <summary>
    /// Deletes every expired session, in batches of <see cref="PostgresSessionStoreOptions.CleanupBatchSize"/>
    /// (one short transaction each, each under the store's deadline). Safe to run on several instances at once:
    /// each expired session is deleted by exactly one of them, and live sessions are never touched.
    /// </summary>
    /// <returns>The number of sessions this call deleted.</returns>
    public async Task<long> CleanupExpiredAsync(CancellationToken cancellationToken = default)
    {
        long total = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var deleted = await RunAsync("cleanup", this, static (store, token) => store.CleanupBatchAsync(token), cancellationToken).ConfigureAwait(false);
            total += deleted;
            if (deleted < _cleanupBatchSize)
            {
                break;
            }
        }

        if (total > 0)
        {
            PostgresLog.CleanupDeleted(_logger, total, _sql.SessionsTable);
        }

        return total;
    }

    private async Task<int> CleanupBatchAsync(CancellationToken token)
    {
        var command = CreateCommand(_sql.Cleanup, Clock(_timeProvider), Int(_cleanupBatchSize));
        await using (command.ConfigureAwait(false))
        {
            var deleted = Convert.ToInt32(await command.ExecuteScalarAsync(token).ConfigureAwait(false), CultureInfo.InvariantCulture);
            if (deleted < _cleanupBatchSize)
            {
                // The last batch of a run: the event claims whose hold ran out go too (few rows, by the primary key's order).
                var prune = CreateCommand(_sql.PruneClaims);
                await using (prune.ConfigureAwait(false))
                {
                    await prune.ExecuteNonQueryAsync(token).ConfigureAwait(false);
                }
            }

            return deleted;
        }
    }

    private void OnCleanupTimer()
    {
        if (Volatile.Read(ref _disposed) != 0 || Interlocked.Exchange(ref _cleanupRunning, 1) != 0)
        {
            return;
        }

        _cleanupTask = RunCleanupAsync();
    }

    private async Task RunCleanupAsync()
    {
        try
        {
            await CleanupExpiredAsync(_disposing.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_disposing.IsCancellationRequested)
        {
            // Disposal stopped it.
        }
        catch (Exception ex) when (ex is ClusterSessionException or InvalidOperationException or NpgsqlException)
        {
            // A background task has no caller to throw to: this is its one log line (no session data in it).
            PostgresLog.CleanupFailed(_logger, ex, _sql.SessionsTable);
        }
        finally
        {
            Volatile.Write(ref _cleanupRunning, 0);
        }
    }

    private async Task StopCleanupAsync()
    {
        if (_cleanupTimer is not null)
        {
            await _cleanupTimer.DisposeAsync().ConfigureAwait(false);
        }

        await _disposing.CancelAsync().ConfigureAwait(false);
        try
        {
            await _cleanupTask.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The cleanup was cancelled by the disposal itself.
        }

        await StopNearCacheAsync().ConfigureAwait(false);
        _disposing.Dispose();
    }
}
