using System.Diagnostics;
using Npgsql;
using static ClusterSession.Postgres.PostgresParameters;

namespace ClusterSession.Postgres;

/// <content>
/// The layout this store writes, read from the marker in the store table and refreshed every
/// <see cref="PostgresSessionStoreOptions.LayoutRefreshInterval"/>, and the heartbeat by which the store registers as a
/// running node (the upgrade waits for every live node to confirm a new layout). docs/postgres-data-model.md, "Layouts".
/// </content>
public sealed partial class PostgresSessionStore : ISessionStoreUpgrade
{
    /// <inheritdoc />
    /// <remarks>
    /// True until the store's first command has read the marker (a new store then finds <c>3</c>); true while the store
    /// table is missing (a database of the previous release on which this store may not run DDL) or its marker is <c>2</c>.
    /// </remarks>
    public bool WritesPreviousLayout => _layout == StoreLayout.Previous;

    /// <summary>The layout this store acts on now.</summary>
    internal StoreLayout Layout => _layout;

    /// <summary>The quoted name of the store table (layout marker and node heartbeats).</summary>
    internal string StoreTableName => _sql.StoreTable;

    /// <summary>The heartbeat row of this store in the store table.</summary>
    internal string NodeName => _nodeName;

    /// <summary>
    /// How a statement names session <paramref name="id"/> in the current layout: the addresses to look it up by (the
    /// handle, preceded by the id while rows of the previous layout may exist), the key a new row gets, and the near-cache
    /// key of its invalidations. In the current layout no statement carries the id.
    /// </summary>
    internal SessionKeys KeysOf(string id)
    {
        var handle = SessionHandle.FromId(id);
        return _layout switch
        {
            StoreLayout.Current => new([handle], handle, [], false),
            StoreLayout.Migrating => new([id, handle], handle, [id], false),
            _ => new([id, handle], id, [handle], true),
        };
    }

    /// <summary>The key of session <paramref name="id"/> in near-cache messages: the previous release's until the store is on layout 3, then the handle.</summary>
    private string NearCacheKeyOf(string id) => _layout == StoreLayout.Current ? SessionHandle.FromId(id) : PostgresNearCacheChannel.KeyOf(id);

    /// <summary>Whether <paramref name="key"/>, heard or returned by a statement, is in the form this node keys its copies by.</summary>
    private bool IsNearCacheKeyForm(string key) => (key.Length == SessionHandle.Length) == (_layout == StoreLayout.Current);

    private ValueTask EnsureLayoutAsync(CancellationToken cancellationToken)
    {
        var task = _layoutTask;
        return task is { IsCompletedSuccessfully: true, Result: true } ? default : EnsureLayoutSlowAsync(cancellationToken);
    }

    private async ValueTask EnsureLayoutSlowAsync(CancellationToken cancellationToken)
    {
        Task<bool> task;
        lock (_layoutLock)
        {
            task = _layoutTask ??= RefreshLayoutAsync(_timeout, CancellationToken.None);
            if (task.IsCompleted && !task.IsCompletedSuccessfully || task is { IsCompletedSuccessfully: true, Result: false })
            {
                _layoutTask = task = RefreshLayoutAsync(_timeout, CancellationToken.None);
            }
        }

        // false: no tables yet; the command runs and reports the missing tables, the next one looks again.
        if (await task.WaitAsync(cancellationToken).ConfigureAwait(false))
        {
            StartLayoutTimer();
        }
    }

    private void StartLayoutTimer()
    {
        lock (_layoutLock)
        {
            if (_layoutTimer is null && Volatile.Read(ref _disposed) == 0)
            {
                // Real time, whatever the store's clock: heartbeats are judged on the database's now().
                _layoutTimer = TimeProvider.System.CreateTimer(static state => ((PostgresSessionStore)state!).OnLayoutTimer(), this, _layoutRefresh, _layoutRefresh);
            }
        }
    }

    private void OnLayoutTimer()
    {
        if (Volatile.Read(ref _disposed) != 0 || Interlocked.Exchange(ref _layoutRefreshing, 1) != 0)
        {
            return;
        }

        _layoutRefreshTask = RefreshQuietlyAsync();

        async Task RefreshQuietlyAsync()
        {
            try
            {
                await RefreshLayoutAsync(_timeout, _disposing.Token).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // No caller: the marker is read again at the next tick, and the layout stays as it was meanwhile.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
            finally
            {
                Volatile.Write(ref _layoutRefreshing, 0);
            }
        }
    }

    /// <summary>
    /// Reads the marker (setting it where the store table has none) and beats this node's heartbeat; without a store table,
    /// the layout is the previous one. Returns false when there are no session tables at all.
    /// </summary>
    private async Task<bool> RefreshLayoutAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var token = deadline.Token;
        var probe = CreateCommand("SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL", Text(_sql.StoreTable), Text(_sql.SessionsTable));
        bool hasStore;
        bool hasSessions;
        await using (probe.ConfigureAwait(false))
        {
            var reader = await probe.ExecuteReaderAsync(token).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                await reader.ReadAsync(token).ConfigureAwait(false);
                hasStore = reader.GetBoolean(0);
                hasSessions = reader.GetBoolean(1);
            }
        }

        if (!hasSessions)
        {
            return false;
        }

        if (!hasStore)
        {
            // A database of the previous release on which nobody ran this release's schema.sql: its nodes may still serve.
            SetLayout(StoreLayout.Previous);
            return true;
        }

        var beat = CreateCommand(_layoutSql.Beat, Text(_nodeName), Text(ReportedLayout()));
        await using (beat.ConfigureAwait(false))
        {
            var marker = await beat.ExecuteScalarAsync(token).ConfigureAwait(false) as string;
            _registered = true;
            SetLayout(ParseLayout(marker));
        }

        return true;
    }

    /// <summary>
    /// The layout this node confirms in its heartbeat: the one it acts on once it has done so for longer than an operation
    /// may take (an operation begun under the layout before cannot land after the confirmation), else the one before.
    /// </summary>
    private string ReportedLayout()
    {
        var settled = Stopwatch.GetElapsedTime(Interlocked.Read(ref _layoutSince)) >= _timeout;
        return NameOf(settled ? _layout : _layoutBefore);
    }

    private void SetLayout(StoreLayout layout)
    {
        StoreLayout before;
        lock (_layoutLock)
        {
            before = _layout;
            if (!_layoutKnown)
            {
                // The first reading: no operation ran under another layout before it, and the near cache, bypassed until
                // now, holds nothing.
                _layoutBefore = layout;
                _layout = layout;
                _layoutKnown = true;
                return;
            }

            if (before == layout)
            {
                return;
            }

            _layoutBefore = before;
            Interlocked.Exchange(ref _layoutSince, Stopwatch.GetTimestamp());
            _layout = layout;
        }

        // Copies are keyed by the previous release's digest until layout 3, by handles from then on: a change of scheme
        // empties the cache (and it serves again after the next heartbeat).
        if ((before == StoreLayout.Current) != (layout == StoreLayout.Current))
        {
            ((Caching.INearCacheListener?)_layer)?.OnChannelDown();
        }
    }

    private static StoreLayout ParseLayout(string? marker) => marker switch
    {
        "3" => StoreLayout.Current,
        "migrating" => StoreLayout.Migrating,
        _ => StoreLayout.Previous,
    };

    internal static string NameOf(StoreLayout layout) => layout switch
    {
        StoreLayout.Current => "3",
        StoreLayout.Migrating => "migrating",
        _ => "2",
    };

    /// <summary>Stops the heartbeat and removes this node's row, so that an upgrade does not wait for a node that is gone.</summary>
    private async Task StopLayoutAsync()
    {
        ITimer? timer;
        lock (_layoutLock)
        {
            timer = _layoutTimer;
            _layoutTimer = null;
        }

        if (timer is not null)
        {
            await timer.DisposeAsync().ConfigureAwait(false);
        }

        await _layoutRefreshTask.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (!_registered)
        {
            return;
        }

        try
        {
            using var deadline = new CancellationTokenSource(_timeout);
            var command = CreateCommand(_layoutSql.Deregister, Text(_nodeName));
            await using (command.ConfigureAwait(false))
            {
                await command.ExecuteNonQueryAsync(deadline.Token).ConfigureAwait(false);
            }
        }
#pragma warning disable CA1031 // Best effort: a row left behind stops counting as live after three refresh intervals.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }
}

/// <summary>The layouts of the PostgreSQL store: the marker's values.</summary>
internal enum StoreLayout
{
    /// <summary>Marker <c>2</c>: sessions keyed by their ids, as the previous release reads them.</summary>
    Previous,

    /// <summary>Marker <c>migrating</c>: new sessions keyed by handles, both forms read, the upgrade moves the rest.</summary>
    Migrating,

    /// <summary>Marker <c>3</c>: sessions keyed by handles only; no statement carries an id.</summary>
    Current,
}

/// <summary>How the statements of one operation name a session (see <see cref="PostgresSessionStore.KeysOf"/>).</summary>
/// <param name="Addresses">The keys to find the session's row by: its handle, preceded by its id while rows may be in the previous layout.</param>
/// <param name="Key">The key a new row gets.</param>
/// <param name="Others">The session's other possible key (a create must not duplicate a row in the other form); empty in layout 3.</param>
/// <param name="Mark">Whether a new row gets the created_at mark of a node of this release writing the previous layout.</param>
internal readonly record struct SessionKeys(string[] Addresses, string Key, string[] Others, bool Mark)
{
    /// <summary>The key of the session's near-cache invalidations, as the statements compute it (PostgresSql.NotifyKeySql).</summary>
    public string NearCacheKey => Addresses.Length > 1 ? PostgresNearCacheChannel.KeyOf(Addresses[0]) : Addresses[0];
}

/// <summary>The statements on the store table, for one schema and table prefix.</summary>
internal sealed class PostgresLayoutSql
{
    public PostgresLayoutSql(string storeTable, string sessionsTable)
    {
        var raw = $"length(id) = {SessionId.Length}";

        // $1 node name, $2 the layout it confirms. Sets the marker where none is, notes when the first node of this release
        // registered, beats, and returns the marker (a CTE's writes are invisible to the final SELECT: hence the coalesce).
        Beat = $"""
            WITH marker AS (
                INSERT INTO {storeTable} (name, value)
                SELECT 'layout', CASE WHEN EXISTS (SELECT FROM {sessionsTable} WHERE {raw}) THEN '2' ELSE '3' END
                WHERE NOT EXISTS (SELECT FROM {storeTable} WHERE name = 'layout')
                ON CONFLICT (name) DO NOTHING
                RETURNING value),
            since AS (
                INSERT INTO {storeTable} (name, value) VALUES ('nodes_since', '') ON CONFLICT (name) DO NOTHING),
            beat AS (
                INSERT INTO {storeTable} (name, value, updated_at) VALUES ($1, $2, now())
                ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at)
            SELECT coalesce((SELECT value FROM marker), (SELECT value FROM {storeTable} WHERE name = 'layout'))
            """;

        // $1 node name.
        Deregister = $"DELETE FROM {storeTable} WHERE name = $1";

        // The marker, and whether any row of the previous layout is left.
        Status = $"SELECT (SELECT value FROM {storeTable} WHERE name = 'layout'), EXISTS (SELECT FROM {sessionsTable} WHERE {raw})";

        // Sessions of the previous layout created within the last $1, and since the first node of this release registered,
        // without the mark nodes of this release put on them: a node of the previous release created them lately, so it still serves.
        Unmarked = $"""
            SELECT count(*) FROM {sessionsTable} s, {storeTable} t
            WHERE t.name = 'nodes_since' AND length(s.id) = {SessionId.Length} AND s.created_at > t.updated_at
              AND s.created_at > now() - $1::interval
              AND extract(microseconds FROM s.created_at)::bigint % 1000 <> {PostgresSql.CreatedMark}
            """;

        // $1 marker.
        SetMarker = $"""
            INSERT INTO {storeTable} (name, value, updated_at) VALUES ('layout', $1, now())
            ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
            """;

        // $1 this node, $2 liveness window, $3 the layouts that count as confirmed. Live nodes that have not confirmed.
        Unconfirmed = $"""
            SELECT count(*) FROM {storeTable}
            WHERE name LIKE 'node:%' AND name <> $1 AND updated_at > now() - $2 AND NOT (value = ANY($3))
            """;

        // $1 batch size, $2 the last id moved (keyset order on the primary key, so a pass reads the table once). Rows a
        // request holds right now are skipped (SKIP LOCKED) and moved by a later pass. Returns the ids moved (the caller
        // only keeps the greatest). ON UPDATE CASCADE moves the attribute rows in the same statement.
        Move = $"""
            WITH batch AS (
                SELECT id FROM {sessionsTable} WHERE id > $2 AND {raw} ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
            UPDATE {sessionsTable} s SET id = {PostgresSql.HandleSql("s.id")} FROM batch b WHERE s.id = b.id
            RETURNING b.id
            """;

        LockName = storeTable + "/upgrade";
    }

    public string Beat { get; }

    public string Deregister { get; }

    public string Status { get; }

    public string Unmarked { get; }

    public string SetMarker { get; }

    public string Unconfirmed { get; }

    public string Move { get; }

    /// <summary>The name of the session-level advisory lock one upgrade at a time holds.</summary>
    public string LockName { get; }
}
