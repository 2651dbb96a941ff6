using ClusterSession.Postgres;

namespace ClusterSession.Postgres.Tests;

/// <summary>The near-cache layer's public state, read through the store under test (the store keeps no hooks of its own).</summary>
internal static class NearCacheLayerViews
{
    extension(PostgresSessionStore store)
    {
        public bool NearCacheUsable => store.NearCacheLayer?.IsUsable ?? false;

        public int NearCacheCount => store.NearCacheLayer?.Count ?? 0;

        public SessionSnapshot? NearCacheCopy(string id) => store.NearCacheLayer?.PeekCopy(id);
    }
}
