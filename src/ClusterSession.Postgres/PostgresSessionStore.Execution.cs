using Npgsql;

namespace ClusterSession.Postgres;

/// <content>Running statements: one deadline per operation, commands and batches with the command timeout, and the one catch.</content>
public sealed partial class PostgresSessionStore
{
    /// <summary>
    /// Runs one store operation (after the schema is in place, when the store creates it) under the store's deadline
    /// (<see cref="SessionStoreOperations"/>); every way PostgreSQL can fail is translated by <see cref="PostgresFailures"/>.
    /// Npgsql cancels a running statement when the token fires (a cancel request to the server), but not a connection
    /// attempt in its handshake: that one ends by the connection Timeout (at most the deadline on data sources the store
    /// builds), while the caller stops waiting at the deadline.
    /// </summary>
    private ValueTask<TResult> RunAsync<TState, TResult>(
        string operation, TState state, Func<TState, CancellationToken, Task<TResult>> body, CancellationToken cancellationToken, bool ensureSchema = true)
        => !ensureSchema
            ? _operations.RunAsync(operation, state, body, cancellationToken)
            : _operations.RunAsync(
                operation,
                (Store: this, State: state, Body: body),
                static async (s, token) =>
                {
                    await s.Store.EnsureSchemaAsync(token).ConfigureAwait(false);
                    await s.Store.EnsureLayoutAsync(token).ConfigureAwait(false);
                    return await s.Body(s.State, token).ConfigureAwait(false);
                },
                cancellationToken);

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
