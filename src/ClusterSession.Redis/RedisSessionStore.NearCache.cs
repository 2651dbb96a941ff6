using System.Text;
using ClusterSession.Caching;
using StackExchange.Redis;

namespace ClusterSession.Redis;

/// <content>
/// The opt-in near cache (<see cref="RedisSessionStoreOptions.NearCache"/>, docs/near-cache.md): the core's
/// <see cref="NearCachedSessionStore"/> layer over this store's uncached operations (a <see cref="NearCacheBackingStore"/>), fed by
/// <see cref="RedisNearChannel"/>, and the announce() function written into the scripts that change a session (a PUBLISH
/// on the channel <c>&lt;KeyPrefix&gt;nc</c> when the cache is on, nothing when it is off).
/// </content>
public sealed partial class RedisSessionStore
{
    /// <summary>The near cache's channel is the key prefix followed by this.</summary>
    internal const string NearChannelSuffix = "nc";

    /// <summary>The near-cache layer over this store, or null when the cache is off. For tests, which read its state.</summary>
    internal NearCachedSessionStore? NearCacheLayer => _layer;

    /// <summary>The near cache's channel, or null when the cache is off. For tests that publish on it.</summary>
    internal string? NearCacheChannel => _near?.ChannelName;

    /// <summary>The session's key in the layout this node writes. For tests that change a session behind the store's back.</summary>
    internal RedisKey SessionKeyForTests(string id) => CreateKey(RedisSessionRef.FromId(id), Layout == RedisLayout.Unknown ? RedisLayout.Current : Layout);

    /// <summary>The announce arguments of the scripts that change a session (the channel empty when the cache is off).</summary>
    private RedisAnnounce AnnounceArguments()
    {
        // Session keys are KeyPrefix + "s:{" + id + "}": the id starts after those bytes (Lua counts from 1).
        var idStart = Encoding.UTF8.GetByteCount(_options.KeyPrefix) + 4;
        return new RedisAnnounce(_near?.ChannelName ?? string.Empty, _near?.NodeId ?? string.Empty, idStart);
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
}
