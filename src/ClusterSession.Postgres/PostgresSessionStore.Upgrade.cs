using System.Globalization;
using Npgsql;
using static ClusterSession.Postgres.PostgresParameters;

namespace ClusterSession.Postgres;

/// <content>
/// The operator's upgrade (<c>clustersession upgrade</c>): from the previous release's layout (sessions keyed by their
/// ids) to layout 3 (keyed by handles). docs/operations.md, "Upgrading", is the procedure.
/// </content>
public sealed partial class PostgresSessionStore
{
    private const int MoveBatchSize = 1000;
    private static readonly TimeSpan ConfirmationPoll = TimeSpan.FromMilliseconds(200);

    /// <inheritdoc />
    /// <remarks>
    /// <para>
    /// Runs <see cref="CreateSchemaAsync"/> first (so the connection needs <c>CREATE</c> on the schema where the store table
    /// is missing). Then, holding an advisory lock (one upgrade at a time): refuses while a node of the previous release is
    /// seen creating sessions (previous-layout rows created since the first node of this release registered, without the
    /// mark this release's nodes put on theirs; a node of the previous release that creates no session cannot be seen);
    /// sets the marker to <c>migrating</c> and waits until every live registered node confirms it (at most
    /// <see cref="PostgresSessionStoreOptions.CommandTimeout"/> plus three <see cref="PostgresSessionStoreOptions.LayoutRefreshInterval"/>s;
    /// otherwise it sets the marker back to <c>2</c> and refuses); moves every remaining session in batches of 1,000 (one
    /// statement each, atomic under concurrent saves); sets <c>3</c>.
    /// </para>
    /// <para>Each step runs under <see cref="PostgresSessionStoreOptions.CommandTimeout"/>; the whole run only under <paramref name="cancellationToken"/>.</para>
    /// </remarks>
    public async ValueTask<SessionStoreUpgradeResult> UpgradeAsync(CancellationToken cancellationToken = default)
    {
        var hadStoreTable = await RunAsync("upgrade", this, static (s, token) => s.StoreTableExistsAsync(token), cancellationToken, ensureSchema: false).ConfigureAwait(false);
        await CreateSchemaAsync(cancellationToken).ConfigureAwait(false);

        var connection = await RunAsync("upgrade", this, static (s, token) => s._dataSource.OpenConnectionAsync(token).AsTask(), cancellationToken, ensureSchema: false).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            if (!await RunAsync("upgrade", (Store: this, Connection: connection, Sql: "SELECT pg_try_advisory_lock(hashtextextended($1, 0))"), static (s, token) => s.Store.LockAsync(s.Connection, s.Sql, token), cancellationToken).ConfigureAwait(false))
            {
                return Refused("another upgrade of these tables is running; wait for it to end and run the upgrade again.");
            }

            try
            {
                return await UpgradeLockedAsync(hadStoreTable, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                await RunAsync("upgrade", (Store: this, Connection: connection, Sql: "SELECT pg_advisory_unlock(hashtextextended($1, 0))"), static (s, token) => s.Store.LockAsync(s.Connection, s.Sql, token), CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    private async Task<SessionStoreUpgradeResult> UpgradeLockedAsync(bool hadStoreTable, CancellationToken cancellationToken)
    {
        var (marker, previousRowsLeft) = await RunAsync("upgrade", this, static (s, token) => s.UpgradeStatusAsync(token), cancellationToken).ConfigureAwait(false);
        if (marker == "3" && !previousRowsLeft)
        {
            SetLayout(StoreLayout.Current);
            return new(SessionStoreUpgradeStatus.NothingToDo, "The store is on the current layout (3): nothing to do.", 0);
        }

        if (!hadStoreTable)
        {
            return Refused(
                "the store table was missing (a database of the previous release whose schema was never updated) and has just been created. "
                + "Nodes of this release register in it within " + Seconds(_layoutRefresh) + " and mark the sessions they create, "
                + "which is how the upgrade tells whether a node of the previous release still serves: run the upgrade again once they have served requests for a while.");
        }

        if (marker != "3")
        {
            if (await UnmarkedAsync(cancellationToken).ConfigureAwait(false) is var unmarked and > 0)
            {
                return Refused(string.Create(
                    CultureInfo.InvariantCulture,
                    $"{unmarked} sessions were created in the previous layout within the last {Seconds(OlderNodeWindow)} by a node that does not mark them, so a node of the previous release (v0.2) still serves. Finish deploying this release to every node, then run the upgrade again (it proceeds once no such session was created for {Seconds(OlderNodeWindow)})."));
            }

            if (marker != "migrating")
            {
                await SetMarkerAsync("migrating", cancellationToken).ConfigureAwait(false);
            }

            SetLayout(StoreLayout.Migrating);
            var unconfirmed = await WaitForConfirmationsAsync(["migrating", "3"], cancellationToken).ConfigureAwait(false);
            var lateUnmarked = unconfirmed == 0 ? await UnmarkedAsync(cancellationToken).ConfigureAwait(false) : 0;
            if (unconfirmed > 0 || lateUnmarked > 0)
            {
                // Back to the previous layout: nodes that switched read both forms anyway, so nobody loses a session.
                await SetMarkerAsync("2", cancellationToken).ConfigureAwait(false);
                SetLayout(StoreLayout.Previous);
                return Refused(unconfirmed > 0
                    ? string.Create(CultureInfo.InvariantCulture, $"{unconfirmed} running nodes did not confirm the migrating layout within {Seconds(ConfirmationTimeout)} (nodes of this release confirm within a command timeout and a refresh interval). The marker is back at 2; make sure every node runs this release and reaches the database, then run the upgrade again.")
                    : string.Create(CultureInfo.InvariantCulture, $"{lateUnmarked} sessions were created in the previous layout by a node that does not mark them while the upgrade waited, so a node of the previous release (v0.2) still serves. The marker is back at 2; finish deploying, then run the upgrade again."));
            }
        }

        var moved = await MoveAllAsync(cancellationToken).ConfigureAwait(false);
        await SetMarkerAsync("3", cancellationToken).ConfigureAwait(false);
        SetLayout(StoreLayout.Current);

        // A session created by a node that had not yet seen "migrating" when it confirmed cannot exist (it confirms only after
        // an operation's deadline), but a second pass costs one scan and makes sure.
        moved += await MoveAllAsync(cancellationToken).ConfigureAwait(false);
        return new(
            SessionStoreUpgradeStatus.Upgraded,
            string.Create(CultureInfo.InvariantCulture, $"The store is on the current layout (3): {moved} sessions were moved from the previous layout, and no session id is kept any more."),
            moved);
    }

    private TimeSpan ConfirmationTimeout => _timeout + (3 * _layoutRefresh);

    private static SessionStoreUpgradeResult Refused(string why) => new(SessionStoreUpgradeStatus.Refused, "Upgrade refused: " + why, 0);

    private static string Seconds(TimeSpan span) => span.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture) + " s";

    private async Task<bool> StoreTableExistsAsync(CancellationToken token)
    {
        var command = CreateCommand("SELECT to_regclass($1) IS NOT NULL", Text(_sql.StoreTable));
        await using (command.ConfigureAwait(false))
        {
            return await command.ExecuteScalarAsync(token).ConfigureAwait(false) is true;
        }
    }

    private async Task<bool> LockAsync(NpgsqlConnection connection, string sql, CancellationToken token)
    {
        var command = new NpgsqlCommand(sql, connection) { CommandTimeout = _commandTimeoutSeconds };
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(Text(_layoutSql.LockName));
            return await command.ExecuteScalarAsync(token).ConfigureAwait(false) is true;
        }
    }

    private async Task<(string? Marker, bool PreviousRowsLeft)> UpgradeStatusAsync(CancellationToken token)
    {
        var command = CreateCommand(_layoutSql.Status);
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                await reader.ReadAsync(token).ConfigureAwait(false);
                return (reader.IsDBNull(0) ? null : reader.GetString(0), reader.GetBoolean(1));
            }
        }
    }

    /// <summary>
    /// How recently a session must have been created by a node that does not mark its sessions for the upgrade to take it
    /// for a node of the previous release that still serves: the time a node of this release counts as alive without a heartbeat.
    /// </summary>
    private TimeSpan OlderNodeWindow => 3 * _layoutRefresh;

    private ValueTask<long> UnmarkedAsync(CancellationToken cancellationToken)
        => RunAsync("upgrade", this, static (s, token) => s.ScalarAsync(s._layoutSql.Unmarked, token, Interval(s.OlderNodeWindow)), cancellationToken);

    private ValueTask<long> SetMarkerAsync(string marker, CancellationToken cancellationToken)
        => RunAsync("upgrade", (Store: this, Marker: marker), static (s, token) => s.Store.NonQueryAsync(s.Store._layoutSql.SetMarker, token, Text(s.Marker)), cancellationToken);

    /// <summary>Waits until no live node other than this one reports a layout outside <paramref name="confirmed"/>; returns how many still do at the deadline.</summary>
    private async Task<long> WaitForConfirmationsAsync(string[] confirmed, CancellationToken cancellationToken)
    {
        var deadline = TimeProvider.System.GetTimestamp();
        while (true)
        {
            var unconfirmed = await RunAsync(
                "upgrade",
                (Store: this, Confirmed: confirmed),
                static (s, token) => s.Store.ScalarAsync(s.Store._layoutSql.Unconfirmed, token, Text(s.Store._nodeName), Interval(3 * s.Store._layoutRefresh), TextArray(s.Confirmed)),
                cancellationToken).ConfigureAwait(false);
            if (unconfirmed == 0 || TimeProvider.System.GetElapsedTime(deadline) >= ConfirmationTimeout)
            {
                return unconfirmed;
            }

            await Task.Delay(ConfirmationPoll, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Moves every session of the previous layout to its handle, in keyset passes over the primary key, until none is left.</summary>
    private async Task<long> MoveAllAsync(CancellationToken cancellationToken)
    {
        long moved = 0;
        while (true)
        {
            var last = string.Empty;
            while (true)
            {
                var (count, greatest) = await RunAsync("upgrade", (Store: this, Last: last), static (s, token) => s.Store.MoveBatchAsync(s.Last, token), cancellationToken).ConfigureAwait(false);
                moved += count;
                if (greatest is null)
                {
                    break;
                }

                last = greatest;
            }

            var (_, left) = await RunAsync("upgrade", this, static (s, token) => s.UpgradeStatusAsync(token), cancellationToken).ConfigureAwait(false);
            if (!left)
            {
                return moved;
            }

            // Rows a request held during the pass (SKIP LOCKED): the next pass takes them.
            await Task.Delay(ConfirmationPoll, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<(int Count, string? Greatest)> MoveBatchAsync(string last, CancellationToken token)
    {
        var command = CreateCommand(_layoutSql.Move, Int(MoveBatchSize), Text(last));
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                var count = 0;
                string? greatest = null;
                while (await reader.ReadAsync(token).ConfigureAwait(false))
                {
                    count++;
                    var id = reader.GetString(0);
                    if (greatest is null || string.CompareOrdinal(id, greatest) > 0)
                    {
                        greatest = id;
                    }
                }

                return (count, greatest);
            }
        }
    }

    private async Task<long> ScalarAsync(string sql, CancellationToken token, params NpgsqlParameter[] parameters)
    {
        var command = CreateCommand(sql, parameters);
        await using (command.ConfigureAwait(false))
        {
            return Convert.ToInt64(await command.ExecuteScalarAsync(token).ConfigureAwait(false), CultureInfo.InvariantCulture);
        }
    }

    private async Task<long> NonQueryAsync(string sql, CancellationToken token, params NpgsqlParameter[] parameters)
    {
        var command = CreateCommand(sql, parameters);
        await using (command.ConfigureAwait(false))
        {
            return await command.ExecuteNonQueryAsync(token).ConfigureAwait(false);
        }
    }
}
