using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <summary>The store layout a node acts on (docs/redis-data-model.md, "Layouts").</summary>
internal enum RedisLayout
{
    /// <summary>Not read from the store yet (before first use).</summary>
    Unknown = 0,

    /// <summary>"2": the previous release's layout (keys hold ids and principal names) is still written, for older nodes.</summary>
    Previous = 2,

    /// <summary>"migrating": the operator's upgrade runs; sessions move to the current layout as they are used.</summary>
    Migrating = 25,

    /// <summary>"3": the current layout only.</summary>
    Current = 3,
}

/// <content>
/// The layout marker (<c>P layout</c>) and the node registry (<c>P nodes</c>): which layout this node writes, read at
/// first use and refreshed in the background, and the heartbeat by which the upgrade knows every node switched.
/// </content>
public sealed partial class RedisSessionStore : ISessionStoreUpgrade
{
    private const string MarkerPrevious = "2";
    private const string MarkerMigrating = "migrating";
    private const string MarkerCurrent = "3";

    /// <inheritdoc />
    public bool WritesPreviousLayout => Layout == RedisLayout.Previous;

    /// <summary>How often the node re-reads the marker and renews its registration (default 5 s). For tests; set before first use.</summary>
    internal TimeSpan LayoutRefreshInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The layout this node acts on now. For tests.</summary>
    internal RedisLayout Layout => (RedisLayout)Volatile.Read(ref _layout);

    /// <summary>This store instance's id in the node registry. For tests.</summary>
    internal string NodeId => _nodeId;

    /// <summary>Re-reads the marker and renews the registration now, as the background loop does. For tests.</summary>
    internal Task RefreshLayoutForTestsAsync() => RunAsync("layout refresh", this, static (s, token) => s.RefreshLayoutAsync(token), CancellationToken.None).AsTask();

    private static RedisLayout ParseMarker(RedisValue marker) => (string?)marker switch
    {
        null => RedisLayout.Unknown,
        MarkerPrevious => RedisLayout.Previous,
        MarkerMigrating => RedisLayout.Migrating,
        _ => RedisLayout.Current,
    };

    private static string MarkerOf(RedisLayout layout) => layout switch
    {
        RedisLayout.Previous => MarkerPrevious,
        RedisLayout.Migrating => MarkerMigrating,
        _ => MarkerCurrent,
    };

    /// <summary>The layout, read from the store on first use (once per store instance; a failed read is tried again).</summary>
    private async Task<RedisLayout> EnsureLayoutAsync(CancellationToken token)
    {
        while (true)
        {
            Task<RedisLayout> start;
            lock (_layoutGate)
            {
                if (_layoutStart is null || _layoutStart.IsFaulted || _layoutStart.IsCanceled)
                {
                    _layoutStart = StartLayoutAsync();
                }

                start = _layoutStart;
            }

            try
            {
                return await start.WaitAsync(token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!token.IsCancellationRequested)
            {
                // A read started by an earlier caller ran out of its own time: start another within this caller's deadline.
            }
        }
    }

    private async Task<RedisLayout> StartLayoutAsync()
    {
        // Shared by every operation waiting for it, so not ended by any one caller; each caller's own deadline ends its
        // wait (and is what it reports), this one only ends the read if every caller gave up.
        using var deadline = new CancellationTokenSource(2 * _options.OperationTimeout);
        var token = deadline.Token;
        var marker = await MarkerAsync(string.Empty, string.Empty, token).ConfigureAwait(false);
        if (marker == RedisLayout.Unknown)
        {
            // No marker: a store written by the previous release (it has sessions in its layout) or a fresh one.
            var previous = await AnyKeyAsync(_keys.PreviousSessionPattern, token).ConfigureAwait(false);
            marker = await MarkerAsync("nx", previous ? MarkerPrevious : MarkerCurrent, token).ConfigureAwait(false);
        }

        ApplyLayout(marker);
        await RegisterAsync(marker, token).ConfigureAwait(false);
        lock (_layoutGate)
        {
            _layoutLoop ??= Task.Run(() => RefreshLoopAsync(_layoutStop.Token));
        }

        return marker;
    }

    private async Task RefreshLoopAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(LayoutRefreshInterval, stop).ConfigureAwait(false);
                await RunAsync("layout refresh", this, static (s, token) => s.RefreshLayoutAsync(token), stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // The store is down or slow: the next round tries again; operations report the outage themselves.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }

    private async Task<bool> RefreshLayoutAsync(CancellationToken token)
    {
        var marker = await MarkerAsync(string.Empty, string.Empty, token).ConfigureAwait(false);
        if (marker != RedisLayout.Unknown)
        {
            ApplyLayout(marker);
        }

        await RegisterAsync(Layout, token).ConfigureAwait(false);
        return true;
    }

    /// <summary>Switches this node to <paramref name="layout"/>; the near cache starts over when its keys change.</summary>
    private void ApplyLayout(RedisLayout layout)
    {
        var before = (RedisLayout)Interlocked.Exchange(ref _layout, (int)layout);
        if (before != RedisLayout.Unknown && before != layout && (before == RedisLayout.Previous || layout == RedisLayout.Previous))
        {
            // In layout 2 copies are keyed by the SHA-1 of the id (what the previous release announces), else by the handle.
            ((Caching.INearCacheListener?)_layer)?.OnChannelDown();
        }
    }

    /// <summary>
    /// Writes this node's heartbeat (the layout it acts on, dated by the store's clock); returns that date. It also
    /// samples the store's clock for <see cref="StoreClockMs"/>: the offset of Redis TIME from this node's clock,
    /// taken at the middle of the round trip.
    /// </summary>
    private async Task<long> RegisterAsync(RedisLayout layout, CancellationToken token)
    {
        var sent = TimeProvider.System.GetTimestamp();
        var storeNow = (long)await EvaluateAsync(RedisLayoutScripts.Register, _keys.Nodes, [_nodeId, MarkerOf(layout)], token).ConfigureAwait(false);
        var halfTrip = TimeProvider.System.GetElapsedTime(sent) / 2;
        var localMid = TimeProvider.System.GetUtcNow() - halfTrip;
        Volatile.Write(ref _storeClockOffsetMs, storeNow - localMid.ToUnixTimeMilliseconds());
        Volatile.Write(ref _storeClockSampled, 1);
        return storeNow;
    }

    /// <summary>
    /// The store's clock (Redis TIME) as this node estimates it: its own clock plus the offset sampled by every
    /// registration (every <see cref="LayoutRefreshInterval"/>), off by about half a round trip; null before the
    /// first sample. It only decides whether to ask the store (a touch that may be due); the store's own clock
    /// decides expiry.
    /// </summary>
    private long? StoreClockMs()
        => Volatile.Read(ref _storeClockSampled) == 0 ? null : TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds() + Volatile.Read(ref _storeClockOffsetMs);

    /// <summary>Reads (<paramref name="operation"/> empty) or sets ("nx", "set") the layout marker; returns it after the call.</summary>
    private async Task<RedisLayout> MarkerAsync(string operation, string value, CancellationToken token)
        => ParseMarker((RedisValue)await EvaluateAsync(RedisLayoutScripts.Marker, _keys.Layout, [operation, value], token).ConfigureAwait(false));

    /// <summary>A script on the primary without waiting for replicas: the marker and the registry are not session data.</summary>
    private Task<RedisResult> EvaluateAsync(string script, RedisKey key, RedisValue[] args, CancellationToken token)
        => CommandAsync(static (db, s) => db.ScriptEvaluateAsync(s.Script, [s.Key], s.Args, Primary), (Script: script, Key: key, Args: args), token);

    /// <summary>Stops the refresh and removes this node from the registry (best effort, before the connection closes).</summary>
    private async Task StopLayoutAsync()
    {
        Task? loop;
        lock (_layoutGate)
        {
            loop = _layoutLoop;
        }

        await _layoutStop.CancelAsync().ConfigureAwait(false);
        if (loop is null)
        {
            return;
        }

        await loop.ConfigureAwait(false);
        try
        {
            await RunAsync("unregister", this, static (s, token) => s.EvaluateAsync(RedisLayoutScripts.Register, s._keys.Nodes, [s._nodeId, string.Empty], token), CancellationToken.None).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // A node that cannot unregister ages out of the registry after 3 refresh intervals.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    /// <summary>Whether any master holds a key matching <paramref name="pattern"/> (a SCAN that stops at the first).</summary>
    private Task<bool> AnyKeyAsync(string pattern, CancellationToken token)
        => CommandAsync(
            static async (db, s) =>
            {
                foreach (var server in db.Multiplexer.GetServers())
                {
                    if (server.IsReplica || !server.IsConnected)
                    {
                        continue;
                    }

                    await foreach (var unused in server.KeysAsync(db.Database, s.Pattern, pageSize: 1000).WithCancellation(s.Token).ConfigureAwait(false))
                    {
                        return true;
                    }
                }

                return false;
            },
            (Pattern: pattern, Token: token),
            token);

    /// <summary>
    /// The keys a session script gets: the key in the layout this node writes, then, while the layout is being upgraded
    /// and the id is known, the session's key in the other layout (the scripts move or use it: RedisScripts.Prelude).
    /// </summary>
    private RedisKey[] SessionKeys(in RedisSessionRef session, RedisLayout layout) => layout switch
    {
        RedisLayout.Previous when session.Id is { } id => [_keys.PreviousSession(id), _keys.Session(session)],
        RedisLayout.Migrating when session.Id is { } id => [_keys.Session(session), _keys.PreviousSession(id)],
        _ => [_keys.Session(session)],
    };

    /// <summary>The key a new session (or a copy under a new id) is created at.</summary>
    private RedisKey CreateKey(in RedisSessionRef session, RedisLayout layout)
        => layout == RedisLayout.Previous && session.Id is { } id ? _keys.PreviousSession(id) : _keys.Session(session);

    /// <summary>The near cache's key of a session: the handle, or in layout 2 the SHA-1 of the id (null without the id).</summary>
    private string? NearKeyOf(in RedisSessionRef session)
        => Layout == RedisLayout.Previous ? (session.Id is { } id ? RedisNearChannel.Sha1KeyOf(id) : null) : session.Handle;

    private string NearKeyOf(string id) => Layout == RedisLayout.Previous ? RedisNearChannel.Sha1KeyOf(id) : SessionHandle.FromId(id);

    /// <summary>Drops this node's copy of a session (its writes may have landed).</summary>
    private void ForgetNear(in RedisSessionRef session)
    {
        if (_layer is { } layer && NearKeyOf(session) is { } key)
        {
            layer.Forget(key);
        }
    }

    /// <summary>Adds a session to its principal's index: operation 'a' (scored <paramref name="score"/>) or 'l' (the store's clock plus it).</summary>
    private Task IndexAddAsync(string principal, in RedisSessionRef session, string operation, long score, CancellationToken token)
        => Layout == RedisLayout.Previous && session.Id is { } id
            ? UpdateIndexAsync(_keys.PreviousIndex(principal), [operation, id, score], token)
            : UpdateIndexAsync(_keys.Index(principal), [operation, session.Member, score], token);

    /// <summary>Removes a session from its principal's index, in both layouts while the upgrade runs.</summary>
    private Task IndexRemoveAsync(string principal, in RedisSessionRef session, CancellationToken token)
    {
        var layout = Layout;
        if (session.Id is not { } id)
        {
            return UpdateIndexAsync(_keys.Index(principal), ["r", session.Member], token);
        }

        return layout switch
        {
            RedisLayout.Previous => UpdateIndexAsync(_keys.PreviousIndex(principal), ["r", id], token),
            RedisLayout.Migrating => Task.WhenAll(
                UpdateIndexAsync(_keys.Index(principal), ["r", session.Member], token),
                UpdateIndexAsync(_keys.PreviousIndex(principal), ["r", id], token)),
            _ => UpdateIndexAsync(_keys.Index(principal), ["r", session.Member], token),
        };
    }

    /// <summary>
    /// Moves a principal's previous-layout index (members: ids) into its current one (members: tag and handle, same
    /// scores): used while migrating, before the index is read, and by the upgrade. Entries are removed one by one, so
    /// one added meanwhile by a node still writing layout 2 stays for the next move.
    /// </summary>
    private async Task MovePrincipalIndexAsync(string principal, CancellationToken token)
    {
        var previousKey = _keys.PreviousIndex(principal);
        var entries = await CommandAsync(static (db, key) => db.SortedSetRangeByRankWithScoresAsync(key, flags: Primary), previousKey, token).ConfigureAwait(false);
        if (entries.Length == 0)
        {
            return;
        }

        var add = new List<RedisValue>(3 * entries.Length);
        var remove = new List<RedisValue>(2 * entries.Length);
        foreach (var entry in entries)
        {
            var id = (string?)entry.Element;
            if (SessionId.IsWellFormed(id))
            {
                add.Add("a");
                add.Add(RedisSessionRef.FromId(id).Member);
                add.Add((long)entry.Score);
            }

            remove.Add("r");
            remove.Add(entry.Element);
        }

        if (add.Count > 0)
        {
            await UpdateIndexAsync(_keys.Index(principal), [.. add], token).ConfigureAwait(false);
        }

        await UpdateIndexAsync(previousKey, [.. remove], token).ConfigureAwait(false);
    }
}
