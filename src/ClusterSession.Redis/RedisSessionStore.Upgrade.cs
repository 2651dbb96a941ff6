using System.Globalization;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <content>
/// The operator's upgrade from layout 2 (the previous release's: keys hold session ids and principal names) to layout 3
/// (docs/redis-data-model.md, "Upgrading from layout 2"; docs/operations.md, "Upgrading").
/// </content>
public sealed partial class RedisSessionStore
{
    /// <summary>How long the upgrade waits for every live node to confirm "migrating", in refresh intervals.</summary>
    private const int ConfirmIntervals = 3;

    /// <summary>
    /// How recently a session must have been created without the current nodes' tell for the upgrade to take it for a
    /// node of the previous release that still serves: the time a current node counts as alive without a heartbeat.
    /// </summary>
    private TimeSpan OlderNodeWindow => ConfirmIntervals * LayoutRefreshInterval;

    private TimeSpan ConfirmWait => (ConfirmIntervals * LayoutRefreshInterval) + _options.OperationTimeout;

    /// <inheritdoc />
    /// <remarks>
    /// Refuses while a session of the previous layout was created, after the first current node registered, without the
    /// current nodes' tell (a creation date rounded to the second): a node of the previous release still serves. Then sets
    /// the marker to "migrating", waits until every live registered node acts on it, moves every previous-layout session
    /// with one RENAME script each (atomic, safe under load and when run twice), rebuilds the principal indexes under
    /// digests, and sets the marker to "3". Each step runs under <see cref="RedisSessionStoreOptions.OperationTimeout"/>;
    /// the whole run takes as long as the scans and the wait for the nodes.
    /// </remarks>
    public async ValueTask<SessionStoreUpgradeResult> UpgradeAsync(CancellationToken cancellationToken = default)
    {
        var marker = await RunAsync("upgrade", this, static (s, token) => s.ReadMarkerAsync(token), cancellationToken).ConfigureAwait(false);
        var previousSessions = await RunAsync("upgrade", this, static (s, token) => s.AnyKeyAsync(s._keys.PreviousSessionPattern, token), cancellationToken).ConfigureAwait(false);
        var previousIndexes = await RunAsync("upgrade", this, static (s, token) => s.AnyKeyAsync(s._keys.PreviousIndexPattern, token), cancellationToken).ConfigureAwait(false);
        if (marker == RedisLayout.Current && !previousSessions && !previousIndexes)
        {
            ApplyLayout(RedisLayout.Current);
            return new(SessionStoreUpgradeStatus.NothingToDo, "The Redis store is on layout 3 already: nothing to upgrade.", 0);
        }

        if (await RunAsync("upgrade", this, static (s, token) => s.MayRenameAsync(token), cancellationToken).ConfigureAwait(false) is { } refused)
        {
            return new(SessionStoreUpgradeStatus.Refused, refused, 0);
        }

        if (marker != RedisLayout.Current)
        {
            var older = await RunAsync("upgrade", this, static (s, token) => s.CountSessionsOfOlderNodesAsync(token), cancellationToken).ConfigureAwait(false);
            if (older > 0)
            {
                return new(
                    SessionStoreUpgradeStatus.Refused,
                    string.Create(CultureInfo.InvariantCulture, $"Refused: {older} session(s) were created by a node of the previous ClusterSession release within the last {OlderNodeWindow.TotalSeconds:0.#} s, so a node of the previous release still serves this store. Deploy the current release to every node, then run upgrade again (it proceeds once no such session was created for {OlderNodeWindow.TotalSeconds:0.#} s). Nothing was changed."),
                    0);
            }

            await RunAsync("upgrade", this, static (s, token) => s.SetMarkerAsync(RedisLayout.Migrating, token), cancellationToken).ConfigureAwait(false);
            var unconfirmed = await WaitForNodesAsync(cancellationToken).ConfigureAwait(false);
            if (unconfirmed > 0)
            {
                // Back to layout 2: the nodes that switched read both layouts, so nothing is lost either way.
                await RunAsync("upgrade", this, static (s, token) => s.SetMarkerAsync(RedisLayout.Previous, token), cancellationToken).ConfigureAwait(false);
                return new(
                    SessionStoreUpgradeStatus.Refused,
                    string.Create(CultureInfo.InvariantCulture, $"Refused: {unconfirmed} running node(s) did not confirm the switch to \"migrating\" within {ConfirmWait.TotalSeconds:0.#} s; the store stays on layout 2. Check that every node runs the current release and reaches Redis, then run upgrade again."),
                    0);
            }
        }

        var moved = await MovePreviousSessionsAsync(cancellationToken).ConfigureAwait(false);
        await RunAsync("upgrade", this, static (s, token) => s.MovePreviousIndexesAsync(token), cancellationToken).ConfigureAwait(false);
        await RunAsync("upgrade", this, static (s, token) => s.SetMarkerAsync(RedisLayout.Current, token), cancellationToken).ConfigureAwait(false);
        return new(
            SessionStoreUpgradeStatus.Upgraded,
            string.Create(CultureInfo.InvariantCulture, $"The Redis store is on layout 3: {moved} session(s) moved; no key holds a session id or a principal name."),
            moved);
    }

    /// <summary>Null when this Redis user may run the upgrade's RENAME, else the operator's message.</summary>
    private async Task<string?> MayRenameAsync(CancellationToken token)
    {
        RedisKey[] scratch = [_keys.Layout.Append(":probe{p}1"), _keys.Layout.Append(":probe{p}2")];
        try
        {
            await CommandAsync(static (db, keys) => db.ScriptEvaluateAsync(RedisLayoutScripts.Probe, keys, flags: Primary), scratch, token).ConfigureAwait(false);
            return null;
        }
        catch (RedisServerException ex) when (ex.Message.Contains("NOPERM", StringComparison.Ordinal))
        {
            return "Refused: the Redis user may not run RENAME, which the upgrade and the nodes use to move sessions to layout 3. Add +rename to its ACL rules (docs/operations.md, \"Least privilege\"), then run upgrade again. Nothing was changed.";
        }
    }

    private Task<RedisLayout> ReadMarkerAsync(CancellationToken token) => MarkerAsync(string.Empty, string.Empty, token);

    private async Task<bool> SetMarkerAsync(RedisLayout layout, CancellationToken token)
    {
        await MarkerAsync("set", MarkerOf(layout), token).ConfigureAwait(false);
        ApplyLayout(layout);
        await RegisterAsync(layout, token).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// The previous-layout sessions created since the first current node registered that lack the current nodes' tell
    /// (in layout 2 they round 'created' down to a whole second; the previous release never does, but for 1 in 1,000).
    /// </summary>
    private async Task<long> CountSessionsOfOlderNodesAsync(CancellationToken token)
    {
        var since = await CommandAsync(static (db, key) => db.HashGetAsync(key, "#since", Primary), _keys.Nodes, token).ConfigureAwait(false);
        if (!since.TryParse(out long sinceMs))
        {
            return 0;
        }

        return await CommandAsync(
            static async (db, s) =>
            {
                long older = 0;
                foreach (var server in db.Multiplexer.GetServers())
                {
                    if (server.IsReplica || !server.IsConnected)
                    {
                        continue;
                    }

                    // Lately: within the window on this master's clock, which judges its sessions.
                    var now = s.TestClockMs ?? new DateTimeOffset(DateTime.SpecifyKind(await server.TimeAsync().ConfigureAwait(false), DateTimeKind.Utc)).ToUnixTimeMilliseconds();
                    var lately = now - s.WindowMs;
                    var reads = new List<Task<RedisValue>>();
                    await foreach (var key in server.KeysAsync(db.Database, s.Pattern, pageSize: 1000).WithCancellation(s.Token).ConfigureAwait(false))
                    {
                        reads.Add(db.HashGetAsync(key, RedisKeys.Meta, Primary));
                    }

                    foreach (var meta in await Task.WhenAll(reads).ConfigureAwait(false))
                    {
                        if (RedisSnapshots.Metadata.Parse(meta) is { } m && m.Created >= s.Since && m.Created >= lately && m.Created % 1000 != 0)
                        {
                            older++;
                        }
                    }
                }

                return older;
            },
            (Pattern: _keys.PreviousSessionPattern, Since: sinceMs, WindowMs: (long)OlderNodeWindow.TotalMilliseconds, TestClockMs: TestClockMs(), Token: token),
            token).ConfigureAwait(false);
    }

    /// <summary>Waits until every other live node (heard within 3 refresh intervals) reports "migrating"; returns how many did not.</summary>
    private async Task<int> WaitForNodesAsync(CancellationToken cancellationToken)
    {
        // A node's refresh may itself wait up to one operation timeout on a slow store.
        var deadline = DateTime.UtcNow + ConfirmWait;
        while (true)
        {
            var unconfirmed = await RunAsync("upgrade", this, static (s, token) => s.UnconfirmedNodesAsync(token), cancellationToken).ConfigureAwait(false);
            if (unconfirmed == 0 || DateTime.UtcNow >= deadline)
            {
                return unconfirmed;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(250, LayoutRefreshInterval.TotalMilliseconds / 4)), cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<int> UnconfirmedNodesAsync(CancellationToken token)
    {
        var now = await RegisterAsync(RedisLayout.Migrating, token).ConfigureAwait(false);
        var nodes = await CommandAsync(static (db, key) => db.HashGetAllAsync(key, Primary), _keys.Nodes, token).ConfigureAwait(false);
        var live = 3 * (long)LayoutRefreshInterval.TotalMilliseconds;
        var unconfirmed = 0;
        var gone = new List<RedisValue>();
        foreach (var node in nodes)
        {
            var value = (string?)node.Value ?? string.Empty;
            var comma = value.LastIndexOf(',');
            if (node.Name == "#since" || node.Name == _nodeId || comma < 0 || !long.TryParse(value.AsSpan(comma + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var seen))
            {
                continue;
            }

            if (now - seen > 10 * live)
            {
                gone.Add(node.Name);
            }
            else if (now - seen <= live && !value.AsSpan(0, comma).SequenceEqual(MarkerMigrating))
            {
                unconfirmed++;
            }
        }

        if (gone.Count > 0)
        {
            // Nodes that stopped without unregistering (killed): their entries go once they are long silent.
            await CommandAsync(static (db, s) => db.HashDeleteAsync(s.Key, s.Fields, Primary), (Key: _keys.Nodes, Fields: gone.ToArray()), token).ConfigureAwait(false);
        }

        return unconfirmed;
    }

    /// <summary>Moves every previous-layout session to its current-layout key, one master and one page at a time.</summary>
    private async Task<long> MovePreviousSessionsAsync(CancellationToken cancellationToken)
    {
        // The scan itself is not bounded by one operation's deadline (a large store takes longer); each page's moves are.
        var multiplexer = await RunAsync<RedisSessionStore, IConnectionMultiplexer>("upgrade", this, static async (s, token) => await s._connection.GetAsync(token).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        long moved = 0;
        foreach (var server in multiplexer.GetServers())
        {
            if (server.IsReplica || !server.IsConnected)
            {
                continue;
            }

            var page = new List<RedisKey>(1000);
            await foreach (var key in server.KeysAsync(multiplexer.GetDatabase().Database, _keys.PreviousSessionPattern, pageSize: 1000).WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                page.Add(key);
                if (page.Count == 1000)
                {
                    moved += await MovePageAsync([.. page], cancellationToken).ConfigureAwait(false);
                    page.Clear();
                }
            }

            moved += await MovePageAsync([.. page], cancellationToken).ConfigureAwait(false);
        }

        return moved;
    }

    private ValueTask<long> MovePageAsync(RedisKey[] page, CancellationToken cancellationToken)
        => page.Length == 0
            ? new(0L)
            : RunAsync(
                "upgrade",
                (Store: this, Page: page),
                static async (s, token) =>
                {
                    var moves = new List<Task<RedisResult>>(s.Page.Length);
                    foreach (var key in s.Page)
                    {
                        if (s.Store._keys.IdFromPreviousSessionKey(key!) is { } id)
                        {
                            moves.Add(s.Store.WriteAsync(RedisLayoutScripts.Move, [s.Store._keys.Session(RedisSessionRef.FromId(id)), key], [], token));
                        }
                    }

                    long moved = 0;
                    foreach (var result in await Task.WhenAll(moves).ConfigureAwait(false))
                    {
                        moved += (long)result;
                    }

                    return moved;
                },
                cancellationToken);

    /// <summary>Moves every previous-layout principal index (named by the principal) to its current one (named by its digest).</summary>
    private async Task<bool> MovePreviousIndexesAsync(CancellationToken token)
    {
        var principals = await CommandAsync(
            static async (db, s) =>
            {
                var found = new List<string>();
                foreach (var server in db.Multiplexer.GetServers())
                {
                    if (server.IsReplica || !server.IsConnected)
                    {
                        continue;
                    }

                    await foreach (var key in server.KeysAsync(db.Database, s.Keys.PreviousIndexPattern, pageSize: 1000).WithCancellation(s.Token).ConfigureAwait(false))
                    {
                        if (s.Keys.PrincipalFromPreviousIndex(key!) is { } principal)
                        {
                            found.Add(principal);
                        }
                    }
                }

                return found;
            },
            (Keys: _keys, Token: token),
            token).ConfigureAwait(false);
        foreach (var principal in principals)
        {
            await MovePrincipalIndexAsync(principal, token).ConfigureAwait(false);
        }

        return true;
    }
}
