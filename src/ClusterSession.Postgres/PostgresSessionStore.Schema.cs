using Npgsql;

namespace ClusterSession.Postgres;

/// <content>Installing the schema: the tables and indexes of schema.sql, created where missing.</content>
public sealed partial class PostgresSessionStore
{
    /// <summary>
    /// Creates the schema, tables and indexes that are missing (the embedded schema.sql, with the
    /// configured schema, prefix and logging mode). Never alters or drops anything that exists;
    /// safe to run from several instances at once.
    /// </summary>
    public async Task CreateSchemaAsync(CancellationToken cancellationToken = default)
    {
        await RunAsync("schema creation", this, static (store, token) => store.CreateSchemaCoreAsync(token), cancellationToken, ensureSchema: false).ConfigureAwait(false);
        PostgresLog.SchemaCreated(_logger, _sql.SessionsTable, _unlogged);

        // The marker may be new: read it before the next command rather than at the next refresh.
        lock (_layoutLock)
        {
            if (_layoutTask is { IsCompleted: true })
            {
                _layoutTask = null;
            }
        }
    }

    private async Task<bool> CreateSchemaCoreAsync(CancellationToken token)
    {
        var connection = await _dataSource.OpenConnectionAsync(token).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = await connection.BeginTransactionAsync(token).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                // CREATE ... IF NOT EXISTS is not safe against itself running concurrently; the lock is.
                await ExecuteAsync(transaction, "SELECT pg_advisory_xact_lock(hashtext('ClusterSession.Postgres.schema'))", null).ConfigureAwait(false);

                // Sessions tables without a store table are the previous release's (even empty, its nodes may still serve):
                // the marker starts at 2. The script itself sets it where it is missing, from the rows (schema.sql).
                var previousRelease = await ExecuteAsync(transaction, "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NULL", _sql.SessionsTable, _sql.StoreTable).ConfigureAwait(false) is true;
                await ExecuteAsync(transaction, _sql.CreateSchema, null).ConfigureAwait(false);
                if (previousRelease)
                {
                    await ExecuteAsync(transaction, $"UPDATE {_sql.StoreTable} SET value = '2' WHERE name = 'layout'", null).ConfigureAwait(false);
                }

                // IF NOT EXISTS keeps tables made earlier with the other logging mode; say so rather than alter them.
                var mode = await ExecuteAsync(transaction, "SELECT relpersistence::text FROM pg_class WHERE oid = to_regclass($1)", _sql.SessionsTable, null).ConfigureAwait(false);
                if (mode is string persistence && persistence == "u" != _unlogged)
                {
                    PostgresLog.LoggingModeMismatch(_logger, _sql.SessionsTable, persistence == "u", _unlogged);
                }

                await transaction.CommitAsync(token).ConfigureAwait(false);
            }
        }

        return true;

        async Task<object?> ExecuteAsync(NpgsqlTransaction transaction, string sql, string? parameter, string? second = null)
        {
            var command = new NpgsqlCommand(sql, connection, transaction) { CommandTimeout = _commandTimeoutSeconds };
            await using (command.ConfigureAwait(false))
            {
                foreach (var value in new[] { parameter, second })
                {
                    if (value is not null)
                    {
                        command.Parameters.Add(PostgresParameters.Text(value));
                    }
                }

                return await command.ExecuteScalarAsync(token).ConfigureAwait(false);
            }
        }
    }

    private ValueTask EnsureSchemaAsync(CancellationToken cancellationToken)
    {
        var task = _schemaTask;
        return task is null || task.IsCompletedSuccessfully ? default : EnsureSchemaSlowAsync(task, cancellationToken);
    }

    private async ValueTask EnsureSchemaSlowAsync(Task task, CancellationToken cancellationToken)
    {
        try
        {
            await task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (SessionStoreUnavailableException)
        {
            // The server was down at startup: try again now, and let this caller see the outcome.
            lock (_schemaLock)
            {
                if (ReferenceEquals(_schemaTask, task))
                {
                    _schemaTask = CreateSchemaAsync(CancellationToken.None);
                }

                task = _schemaTask!;
            }

            await task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
