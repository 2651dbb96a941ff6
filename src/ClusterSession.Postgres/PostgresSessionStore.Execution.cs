using Npgsql;

namespace ClusterSession.Postgres;

/// <content>Running statements: one deadline per operation, commands and batches with the command timeout, and the one catch.</content>
public sealed partial class PostgresSessionStore
{
    /// <summary>
    /// Runs one store operation (after the schema is in place, when the store creates it) under the store's
    /// deadline, and maps every way PostgreSQL can fail through <see cref="PostgresFailures"/>: the one catch
    /// of the store. The caller's own cancellation stays an <see cref="OperationCanceledException"/>.
    /// </summary>
    private async ValueTask<TResult> RunAsync<TState, TResult>(
        string operation, TState state, Func<TState, CancellationToken, Task<TResult>> body, CancellationToken cancellationToken, bool ensureSchema = true)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_timeout);
        try
        {
            if (ensureSchema)
            {
                await EnsureSchemaAsync(deadline.Token).ConfigureAwait(false);
                await EnsureLayoutAsync(deadline.Token).ConfigureAwait(false);
            }

            return await AwaitWithinAsync(body(state, deadline.Token), deadline.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested && _failures.Translate(ex, operation, deadline.IsCancellationRequested) is { } failure)
        {
            throw failure;
        }
    }

    /// <summary>
    /// Npgsql cancels a running statement when the token fires (a cancel request to the server), but not a
    /// connection attempt in its handshake: that one ends by the connection Timeout (at most the deadline on
    /// data sources the store builds). The caller stops waiting at the token either way.
    /// </summary>
    private static async Task<TResult> AwaitWithinAsync<TResult>(Task<TResult> pending, CancellationToken token)
    {
        try
        {
            return await pending.WaitAsync(token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!pending.IsCompleted)
        {
            _ = pending.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            throw;
        }
    }

    private NpgsqlCommand CreateCommand(string sql, params ReadOnlySpan<NpgsqlParameter> parameters)
    {
        var command = _dataSource.CreateCommand(sql);
        command.CommandTimeout = _commandTimeoutSeconds;
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(parameter);
        }

        return command;
    }

    /// <summary>A command on <paramref name="write"/>'s connection (an own write, whose echo the listener recognises), else on the data source.</summary>
    private NpgsqlCommand CreateCommand(OwnWrite? write, string sql, params ReadOnlySpan<NpgsqlParameter> parameters)
    {
        if (write is null)
        {
            return CreateCommand(sql, parameters);
        }

        var command = new NpgsqlCommand(sql, write.Connection) { CommandTimeout = _commandTimeoutSeconds };
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(parameter);
        }

        return command;
    }

    private NpgsqlBatch CreateBatch(params ReadOnlySpan<NpgsqlBatchCommand> commands) => CreateBatch(null, commands);

    /// <summary>A batch on <paramref name="write"/>'s connection when given, else on the data source.</summary>
    private NpgsqlBatch CreateBatch(OwnWrite? write, params ReadOnlySpan<NpgsqlBatchCommand> commands)
    {
        var batch = write?.Connection.CreateBatch() ?? _dataSource.CreateBatch();
        batch.Timeout = _commandTimeoutSeconds;
        foreach (var command in commands)
        {
            batch.BatchCommands.Add(command);
        }

        return batch;
    }
}
