using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ClusterSession.Redis;
using ClusterSession.Testing.Servers;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>
/// <c>AddClusterSessionInstrumentation()</c> with OpenTelemetry's SDK and in-memory exporter: the meter and instrument
/// names and the semantic-convention attributes of store spans and duration histograms, on a real redis-server, on the
/// in-memory store, and on a Redis store whose server does not answer (error.type).
/// </summary>
public sealed class OpenTelemetryInstrumentationTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    [Fact]
    public async Task Redis_store_calls_export_meter_and_instrument_names_with_db_and_server_attributes()
    {
        var metrics = new List<Metric>();
        var spans = new List<Activity>();
        using var meterProvider = Sdk.CreateMeterProviderBuilder().AddClusterSessionInstrumentation().AddInMemoryExporter(metrics).Build();
        using var tracerProvider = Sdk.CreateTracerProviderBuilder().AddClusterSessionInstrumentation().AddInMemoryExporter(spans).Build();
        var prefix = "otel-" + Guid.NewGuid().ToString("N")[..8] + ":";
        await using (var app = await StartAsync(options => options.UseRedis(r =>
        {
            r.Configuration = redis.Configuration;
            r.KeyPrefix = prefix;
            r.NearCache.Enabled = true;
        })))
        {
            var browser = new Browser();
            Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(app.Address, "/s/set/a/1")).Status);
            Assert.Equal("1", (await browser.GetAsync(app.Address, "/s/get/a")).Body);
            meterProvider.ForceFlush();
            tracerProvider.ForceFlush();
        }

        var port = redis.Port == 0 ? (int?)null : redis.Port;
        var duration = Points(metrics, "ClusterSession.AspNetCore", "cluster_session.store.duration")
            .Where(tags => Equals(tags.GetValueOrDefault("db.system.name"), "redis") && (port is null || Equals(tags.GetValueOrDefault("server.port"), port)))
            .ToList();
        Assert.Contains(duration, tags => Equals(tags.GetValueOrDefault("db.operation.name"), "load"));
        Assert.Contains(duration, tags => Equals(tags.GetValueOrDefault("db.operation.name"), "create"));
        Assert.All(duration, tags =>
        {
            Assert.False(string.IsNullOrEmpty(tags["server.address"] as string));
            Assert.Equal(tags["db.operation.name"], tags["cluster_session.operation"]);
            Assert.False(tags.ContainsKey("error.type"));
        });
        Assert.Equal("s", metrics.First(m => m.Name == "cluster_session.store.duration").Unit);
        Assert.Contains(metrics, m => m.MeterName == "ClusterSession.AspNetCore" && m.Name == "cluster_session.saves");
        Assert.Contains(metrics, m => m.MeterName == "ClusterSession.AspNetCore" && m.Name == "cluster_session.loads");
        Assert.Contains(metrics, m => m.MeterName == "ClusterSession.NearCache" && m.Name is "cluster_session.near_cache.misses" or "cluster_session.near_cache.hits");

        var span = Assert.Single(spans, s => s.DisplayName == "session create" && Equals(s.GetTagItem("server.port"), port ?? s.GetTagItem("server.port")) && (string?)s.GetTagItem("db.system.name") == "redis");
        Assert.Equal("ClusterSession.AspNetCore", span.Source.Name);
        Assert.Equal(ActivityKind.Client, span.Kind);
        Assert.Equal("create", span.GetTagItem("db.operation.name"));
        Assert.NotNull(span.GetTagItem("server.address"));
    }

    [Fact]
    public async Task In_memory_store_calls_are_db_system_other_without_a_server()
    {
        var metrics = new List<Metric>();
        using var meterProvider = Sdk.CreateMeterProviderBuilder().AddClusterSessionInstrumentation().AddInMemoryExporter(metrics).Build();
        await using (var app = await StartAsync(options => options.UseInMemory()))
        {
            Assert.Equal(HttpStatusCode.OK, (await new Browser().PostAsync(app.Address, "/s/set/a/1")).Status);
            meterProvider.ForceFlush();
        }

        var duration = Points(metrics, "ClusterSession.AspNetCore", "cluster_session.store.duration")
            .Where(tags => Equals(tags.GetValueOrDefault("db.system.name"), "other"))
            .ToList();
        Assert.Contains(duration, tags => Equals(tags.GetValueOrDefault("db.operation.name"), "create"));
        Assert.All(duration, tags => Assert.False(tags.ContainsKey("server.address")));
    }

    [Fact]
    public async Task A_failed_store_call_carries_error_type_on_its_span_duration_and_failure_count()
    {
        var closedPort = ClosedPort();
        var metrics = new List<Metric>();
        var spans = new List<Activity>();
        using var meterProvider = Sdk.CreateMeterProviderBuilder().AddClusterSessionInstrumentation().AddInMemoryExporter(metrics).Build();
        using var tracerProvider = Sdk.CreateTracerProviderBuilder().AddClusterSessionInstrumentation().AddInMemoryExporter(spans).Build();
        await using (var app = await StartAsync(
            options =>
            {
                options.UseRedis(r =>
                {
                    r.Configuration = $"127.0.0.1:{closedPort},abortConnect=false,connectTimeout=300";
                    r.OperationTimeout = TimeSpan.FromMilliseconds(500);
                });
                options.StoreTimeout = TimeSpan.FromSeconds(1);
            }))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await new Browser().PostAsync(app.Address, "/s/set/a/1")).Status);
            meterProvider.ForceFlush();
            tracerProvider.ForceFlush();
        }

        bool OnClosedPort(Dictionary<string, object?> tags) => Equals(tags.GetValueOrDefault("server.port"), closedPort);
        var failures = Points(metrics, "ClusterSession.AspNetCore", "cluster_session.store.failures").Where(OnClosedPort).ToList();
        Assert.NotEmpty(failures);
        Assert.All(failures, tags => Assert.False(string.IsNullOrEmpty(tags["error.type"] as string)));
        Assert.Contains(Points(metrics, "ClusterSession.AspNetCore", "cluster_session.store.duration").Where(OnClosedPort), tags => tags.ContainsKey("error.type"));
        var span = spans.First(s => Equals(s.GetTagItem("server.port"), closedPort));
        Assert.Equal(ActivityStatusCode.Error, span.Status);
        Assert.Equal("127.0.0.1", span.GetTagItem("server.address"));
        Assert.False(string.IsNullOrEmpty(span.GetTagItem("error.type") as string));
    }

    private static Task<TestApp> StartAsync(Action<ClusterSessionOptions> configure)
        => TestApp.StartCoreAsync(
            Directory.CreateTempSubdirectory("cs-keys-"),
            services => services.AddClusterSession(configure),
            app => app.UseClusterSession());

    /// <summary>The attributes of every point of one instrument, as dictionaries.</summary>
    private static IEnumerable<Dictionary<string, object?>> Points(List<Metric> metrics, string meter, string instrument)
    {
        foreach (var metric in metrics.Where(m => m.MeterName == meter && m.Name == instrument))
        {
            var points = new List<Dictionary<string, object?>>();
            foreach (ref readonly var point in metric.GetMetricPoints())
            {
                var tags = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var tag in point.Tags)
                {
                    tags[tag.Key] = tag.Value;
                }

                points.Add(tags);
            }

            foreach (var tags in points)
            {
                yield return tags;
            }
        }
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
