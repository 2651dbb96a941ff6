using ClusterSession.Redis;

namespace ClusterSession.Redis.Tests;

/// <summary>The near-cache layer's public state, read through the store under test (the store keeps no hooks of its own).</summary>
internal static class NearCacheLayerViews
{
    extension(RedisSessionStore store)
    {
        public bool NearCacheUsable => store.NearCacheLayer?.IsUsable ?? false;

        public int NearCacheCount => store.NearCacheLayer?.Count ?? 0;

        public long NearCacheChannelDowns => store.NearCacheLayer?.ChannelDowns ?? 0;

        public long NearCacheHeartbeats => store.NearCacheLayer?.HeartbeatsReceived ?? 0;

        public long NearCacheUnacknowledgedEnds => store.NearCacheLayer?.UnacknowledgedEnds ?? 0;

        public int NearCacheLivePeers => store.NearCacheLayer?.LiveNodeCount ?? 0;
    }
}
