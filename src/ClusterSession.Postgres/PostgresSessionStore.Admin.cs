using System.Globalization;
using System.Text.Json;
using static ClusterSession.Postgres.PostgresParameters;

namespace ClusterSession.Postgres;

/// <summary>The operator's view (<see cref="ISessionStoreAdministration"/>): count cost and a measured sample.</summary>
public sealed partial class PostgresSessionStore : ISessionStoreAdministration
{
    /// <inheritdoc />
    /// <remarks>
    /// The planner's row estimate of the sessions table (<c>EXPLAIN</c> of a plain scan): it reads the statistics and the
    /// table's current size, so it also answers for a table that was never analyzed, and reads no row.
    /// </remarks>
    public ValueTask<long> EstimateCountCostAsync(CancellationToken cancellationToken = default)
        => RunAsync("count estimate", this, static (store, token) => store.EstimateCountCostCoreAsync(token), cancellationToken);

    /// <inheritdoc />
    /// <remarks>
    /// One statement: the <c>pg_column_size</c> of each sampled session's row plus its attribute rows, its time to live
    /// on the database's clock, and <c>pg_total_relation_size</c> of both tables (with their indexes and TOAST).
    /// </remarks>
    public ValueTask<SessionStoreSample> SampleAsync(int maxSessions, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSessions);
        return RunAsync("sample", (Store: this, Max: maxSessions), static (s, token) => s.Store.SampleCoreAsync(s.Max, token), cancellationToken);
    }

    private async Task<long> EstimateCountCostCoreAsync(CancellationToken token)
    {
        var command = CreateCommand($"EXPLAIN (FORMAT JSON) SELECT 1 FROM {_sql.SessionsTable}");
        await using (command.ConfigureAwait(false))
        {
            var plan = (string)(await command.ExecuteScalarAsync(token).ConfigureAwait(false))!;
            using var json = JsonDocument.Parse(plan);
            return (long)json.RootElement[0].GetProperty("Plan").GetProperty("Plan Rows").GetDouble();
        }
    }

    private async Task<SessionStoreSample> SampleCoreAsync(int maxSessions, CancellationToken token)
    {
        var now = "coalesce($1::timestamptz, now())";
        var command = CreateCommand(
            $"""
            SELECT pg_column_size(s.*) + coalesce((SELECT sum(pg_column_size(a.*)) FROM {_sql.AttributesTable} a WHERE a.session_id = s.id), 0)::bigint,
                   extract(epoch FROM s.expires_at - {now})::float8,
                   pg_total_relation_size(to_regclass($3)) + pg_total_relation_size(to_regclass($4))
            FROM {_sql.SessionsTable} s WHERE s.expires_at > {now} LIMIT $2
            """,
            Clock(_timeProvider),
            Int(maxSessions),
            Text(_sql.SessionsTable),
            Text(_sql.AttributesTable));
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                var bytes = new List<long>();
                var times = new List<TimeSpan>();
                long? total = null;
                while (await reader.ReadAsync(token).ConfigureAwait(false))
                {
                    bytes.Add(reader.GetInt64(0));
                    times.Add(TimeSpan.FromSeconds(reader.GetDouble(1)));
                    total = reader.GetInt64(2);
                }

                return new SessionStoreSample(bytes, times, total ?? await TotalSizeAsync(token).ConfigureAwait(false));
            }
        }
    }

    private async Task<long> TotalSizeAsync(CancellationToken token)
    {
        var command = CreateCommand("SELECT pg_total_relation_size(to_regclass($1)) + pg_total_relation_size(to_regclass($2))", Text(_sql.SessionsTable), Text(_sql.AttributesTable));
        await using (command.ConfigureAwait(false))
        {
            return Convert.ToInt64(await command.ExecuteScalarAsync(token).ConfigureAwait(false), CultureInfo.InvariantCulture);
        }
    }
}
