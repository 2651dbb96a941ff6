using Npgsql;

namespace ClusterSession.Bench.Postgres;

/// <summary>A direct (unproxied) connection for the figures PostgreSQL reports about itself.</summary>
internal sealed class PostgresProbe : IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private bool _statementsReady;

    public PostgresProbe(string connectionString)
    {
        _dataSource = NpgsqlDataSource.Create(connectionString);
    }

    /// <summary>The current WAL insert position in bytes (pg_current_wal_lsn - '0/0').</summary>
    public async Task<long> WalPositionAsync(CancellationToken cancellationToken)
        => Convert.ToInt64(await ScalarAsync("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint", cancellationToken), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>pg_total_relation_size of the tables (heap, indexes, TOAST), summed.</summary>
    public async Task<long> TotalBytesAsync(IReadOnlyList<string> tables, CancellationToken cancellationToken)
    {
        long total = 0;
        foreach (var table in tables)
        {
            total += (long)(await ScalarAsync($"SELECT pg_total_relation_size('{table.Replace("'", "''", StringComparison.Ordinal)}')", cancellationToken))!;
        }

        return total;
    }

    /// <summary>n_dead_tup of the tables from pg_stat_user_tables, summed (as of the last stats flush of each backend).</summary>
    public async Task<long> DeadTuplesAsync(IReadOnlyList<string> tables, CancellationToken cancellationToken)
    {
        long total = 0;
        foreach (var table in tables)
        {
            var value = await ScalarAsync($"SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = to_regclass('{table.Replace("'", "''", StringComparison.Ordinal)}')", cancellationToken);
            total += value is long l ? l : 0;
        }

        return total;
    }

    /// <summary>
    /// Milliseconds of statement execution the server has spent (pg_stat_statements total_exec_time, every database),
    /// leaving out this probe's own queries; null when the server does not load pg_stat_statements.
    /// </summary>
    public async Task<double?> StatementMsAsync(CancellationToken cancellationToken)
    {
        try
        {
            if (!_statementsReady)
            {
                await ExecuteAsync("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", cancellationToken);
                _statementsReady = true;
            }

            return Convert.ToDouble(await ScalarAsync(
                "SELECT coalesce(sum(total_exec_time), 0) FROM pg_stat_statements WHERE query NOT ILIKE ALL (ARRAY['%pg_stat_statements%', '%pg_current_wal_insert_lsn%', '%pg_total_relation_size%', '%pg_stat_user_tables%', '%pg_stat_activity%', 'CREATE EXTENSION%'])",
                cancellationToken), System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (PostgresException)
        {
            // Not installed, or not in shared_preload_libraries: the figure does not exist on this server.
            return null;
        }
    }

    public async Task<long> RowCountAsync(string table, CancellationToken cancellationToken)
        => (long)(await ScalarAsync($"SELECT count(*) FROM {table}", cancellationToken))!;

    public async Task ExecuteAsync(string sql, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<object?> ScalarAsync(string sql, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand(sql);
        return await command.ExecuteScalarAsync(cancellationToken);
    }

    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();
}
