using System.Diagnostics.Metrics;

namespace ClusterSession.Caching;

/// <summary>
/// The near cache's instruments on the <c>ClusterSession.NearCache</c> meter. The meter comes from the application's
/// <see cref="IMeterFactory"/> when the store was built through DI (the factory owns and disposes it); a store built
/// with <c>new</c> has no factory, so it creates the meter itself and disposes it with the cache.
/// </summary>
internal sealed class NearCacheMetrics : IDisposable
{
    /// <summary>The meter's name; the same for every store (the Redis store adds its own instrument to it).</summary>
    public const string MeterName = "ClusterSession.NearCache";

    private readonly Meter? _owned;

    public NearCacheMetrics(IMeterFactory? meterFactory)
    {
        var version = typeof(NearCacheMetrics).Assembly.GetName().Version?.ToString();
        Meter = meterFactory?.Create(MeterName, version) ?? (_owned = new Meter(MeterName, version));
        Hits = Meter.CreateCounter<long>("cluster_session.near_cache.hits", "{read}", "Session reads served from this node's near cache.");
        Misses = Meter.CreateCounter<long>("cluster_session.near_cache.misses", "{read}", "Session reads the near cache could not serve (absent, expired, or cache bypassed).");
        Invalidations = Meter.CreateCounter<long>("cluster_session.near_cache.invalidations", "{session}", "Cached sessions dropped because another node (or this one) changed them.");
        Flushes = Meter.CreateCounter<long>("cluster_session.near_cache.flushes", "{flush}", "Times the near cache was emptied because its invalidation channel was down or late.");
    }

    public Meter Meter { get; }

    public Counter<long> Hits { get; }

    public Counter<long> Misses { get; }

    public Counter<long> Invalidations { get; }

    public Counter<long> Flushes { get; }

    /// <summary>Disposes the meter if this object created it; a factory's meter is the factory's to dispose.</summary>
    public void Dispose() => _owned?.Dispose();
}
