using ClusterSession.AspNetCore.Diagnostics;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace OpenTelemetry.Metrics
{
    /// <summary><c>AddClusterSessionInstrumentation()</c> for OpenTelemetry's meter provider builder.</summary>
    public static class ClusterSessionMeterProviderBuilderExtensions
    {
        private const string NearCacheMeterName = "ClusterSession.NearCache";

        /// <summary>
        /// Collects every ClusterSession meter: <c>ClusterSession.AspNetCore</c> (loads, saves, store calls and their
        /// duration, circuit state) and <c>ClusterSession.NearCache</c> (near-cache hits, misses, invalidations, flushes).
        /// </summary>
        /// <param name="builder">The meter provider builder, e.g. from <c>services.AddOpenTelemetry().WithMetrics(...)</c>.</param>
        /// <returns>The builder, for chaining.</returns>
        public static MeterProviderBuilder AddClusterSessionInstrumentation(this MeterProviderBuilder builder)
        {
            ArgumentNullException.ThrowIfNull(builder);
            // The near cache's meter, by name: the near cache's own type for it is internal to the core.
            return builder.AddMeter(SessionDiagnostics.Name, NearCacheMeterName);
        }
    }
}

namespace OpenTelemetry.Trace
{
    /// <summary><c>AddClusterSessionInstrumentation()</c> for OpenTelemetry's tracer provider builder.</summary>
    public static class ClusterSessionTracerProviderBuilderExtensions
    {
        /// <summary>Collects the spans of session store calls (ActivitySource <c>ClusterSession.AspNetCore</c>).</summary>
        /// <param name="builder">The tracer provider builder, e.g. from <c>services.AddOpenTelemetry().WithTracing(...)</c>.</param>
        /// <returns>The builder, for chaining.</returns>
        public static TracerProviderBuilder AddClusterSessionInstrumentation(this TracerProviderBuilder builder)
        {
            ArgumentNullException.ThrowIfNull(builder);
            return builder.AddSource(SessionDiagnostics.Name);
        }
    }
}
