using System.Text;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <content>
/// The opt-in near cache (<see cref="RedisSessionStoreOptions.NearCache"/>, docs/near-cache.md): loads served from this
/// node's copies with no round trip, the refresh of a served session's last access off the request's path, and the
/// announce() function written into the scripts that change a session (a PUBLISH on the channel
/// <c>&lt;KeyPrefix&gt;nc</c> when the cache is on, nothing when it is off).
/// </content>
public sealed partial class RedisSessionStore
{
    /// <summary>The near cache's channel is the key prefix followed by this.</summary>
    internal const string NearChannelSuffix = "nc";

    // Refreshes of last access running in the background at once, at most; past it a due refresh waits for a later hit.
    private const int MaxTouchesInFlight = 64;

    private int _touchesInFlight;

    /// <summary>Whether the near cache serves copies now (false when it is off). For tests.</summary>
    internal bool NearCacheUsable => _near?.Cache.IsUsable ?? false;

    /// <summary>How many sessions the near cache holds. For tests.</summary>
    internal int NearCacheCount => _near?.Cache.Count ?? 0;

    /// <summary>How many times a connection event turned the near cache off. For tests.</summary>
    internal long NearCacheChannelDowns => _near?.ChannelDowns ?? 0;

    /// <summary>How many near-cache heartbeats came back. For tests.</summary>
    internal long NearCacheHeartbeats => _near?.HeartbeatsReceived ?? 0;

    /// <summary>How many session ends returned before every live node acknowledged them. For tests.</summary>
    internal long NearCacheUnacknowledgedEnds => _near?.UnacknowledgedEnds ?? 0;

    /// <summary>How many other nodes this one counts as live (heard within 3 heartbeat intervals). For tests.</summary>
    internal int NearCacheLivePeers => _near?.LivePeerCount ?? 0;

    /// <summary>The near cache's channel, or null when the cache is off. For tests.</summary>
    internal string? NearCacheChannel => _near?.ChannelName;

    /// <summary>The session's key in the layout this node writes. For tests that change a session behind the store's back.</summary>
    internal RedisKey SessionKeyForTests(string id) => CreateKey(RedisSessionRef.FromId(id), Layout == RedisLayout.Unknown ? RedisLayout.Current : Layout);

    /// <summary>The announce arguments of the scripts that change a session (the channel empty when the cache is off).</summary>
    private RedisAnnounce AnnounceArguments()
    {
        // Session keys are KeyPrefix + "s:{" + id + "}": the id starts after those bytes (Lua counts from 1).
        var idStart = Encoding.UTF8.GetByteCount(_options.KeyPrefix) + 4;
        return new RedisAnnounce(_near?.ChannelName ?? string.Empty, _near?.Nonce ?? string.Empty, idStart);
    }

    /// <summary>A script that changes one session. When it fails the change may still have landed, so this node's copy goes.</summary>
    private async Task<RedisResult[]> WriteChangeAsync(RedisSessionRef session, string script, RedisValue[] args, CancellationToken token)
    {
        try
        {
            return (RedisResult[])(await WriteAsync(script, SessionKeys(session, Layout), args, token).ConfigureAwait(false))!;
        }
        catch
        {
            ForgetNear(session);
            throw;
        }
    }

    private ValueTask<SessionSnapshot?> LoadNearAsync(RedisNearChannel near, string id, CancellationToken cancellationToken)
    {
        near.Drain();
        if (near.Cache.TryGet(id, out var snapshot, out var touchDue))
        {
            if (touchDue)
            {
                TouchInBackground(near, id);
            }

            return new(snapshot);
        }

        return RunAsync("load", (Store: this, Near: near, Id: id), static (s, token) => s.Store.LoadAndCacheAsync(s.Near, s.Id, token), cancellationToken);
    }

    private async Task<SessionSnapshot?> LoadAndCacheAsync(RedisNearChannel near, string id, CancellationToken token)
    {
        // Registered before the round trip, so that an invalidation arriving while it is in flight keeps it out of the cache.
        var load = near.Cache.BeginLoad(id);

        // A load sent while the channel was not proven is not cached, even when a heartbeat proves the channel before
        // the reply comes back: a change made between the read and the resubscription was announced to nobody, and the
        // heartbeat (on the subscription's own connection) can overtake the reply.
        var cacheable = near.Cache.IsUsable;
        SessionSnapshot? snapshot = null;
        try
        {
            snapshot = await LoadCoreAsync(id, token).ConfigureAwait(false);
            return snapshot;
        }
        finally
        {
            // The store's clock at the load is not returned: this node's clock stands in (the copy lives at most MaxAge anyway).
            near.Cache.CompleteLoad(load, cacheable ? snapshot : null, _time.GetUtcNow());
        }
    }

    /// <summary>
    /// Refreshes a served session's last access with a normal load (which touches it), off the request's path: one
    /// per session at a time, at most <see cref="MaxTouchesInFlight"/> at once, under the store's deadline, errors ignored.
    /// </summary>
    private void TouchInBackground(RedisNearChannel near, string id)
    {
        if (!near.Cache.TryBeginTouch(id))
        {
            return;
        }

        if (Interlocked.Increment(ref _touchesInFlight) > MaxTouchesInFlight)
        {
            Interlocked.Decrement(ref _touchesInFlight);
            near.Cache.EndTouch(id);
            return;
        }

        _ = TouchAsync(near, id);
    }

    private async Task TouchAsync(RedisNearChannel near, string id)
    {
        try
        {
            await Task.Yield();
            await RunAsync("load", (Store: this, Near: near, Id: id), static (s, token) => s.Store.LoadAndCacheAsync(s.Near, s.Id, token), CancellationToken.None).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // A refresh that fails is tried again by a later hit (or the copy ages out); the request was served already.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
        finally
        {
            near.Cache.EndTouch(id);
            Interlocked.Decrement(ref _touchesInFlight);
        }
    }
}
