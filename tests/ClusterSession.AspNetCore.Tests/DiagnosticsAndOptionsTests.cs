using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>Metrics, traces and startup validation.</summary>
public sealed class DiagnosticsAndOptionsTests
{
    private const string Name = "ClusterSession.AspNetCore";

    [Fact]
    public async Task Loads_saves_misses_and_store_latency_are_measured_and_store_calls_traced()
    {
        var measurements = new ConcurrentDictionary<string, double>(StringComparer.Ordinal);
        using var meterListener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == Name)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        meterListener.SetMeasurementEventCallback<long>((instrument, value, _, _) => measurements.AddOrUpdate(instrument.Name, value, (_, v) => v + value));
        meterListener.SetMeasurementEventCallback<double>((instrument, value, _, _) => measurements.AddOrUpdate(instrument.Name, 1, (_, v) => v + 1));
        meterListener.Start();
        var activities = new ConcurrentBag<string>();
        using var activityListener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity => activities.Add(activity.OperationName),
        };
        ActivitySource.AddActivityListener(activityListener);

        await using var cluster = await AppCluster.StartAsync(new ClusterSession.InMemory.InMemorySessionStore(), instances: 1);
        var browser = new Browser();
        await browser.PostAsync(cluster[0], "/s/set/a/1");
        await browser.PostAsync(cluster[0], "/s/set/b/2");
        await browser.GetAsync(cluster[0], "/s/get/a");
        var stranger = new Browser();
        stranger.Cookies[".ClusterSession"] = SessionId.Create();
        await stranger.GetAsync(cluster[0], "/s/get/a");

        Assert.True(measurements.GetValueOrDefault("cluster_session.loads") >= 1);
        Assert.True(measurements.GetValueOrDefault("cluster_session.saves") >= 2);
        Assert.True(measurements.GetValueOrDefault("cluster_session.misses") >= 1);
        Assert.True(measurements.GetValueOrDefault("cluster_session.store.duration") >= 3);
        Assert.Contains("session load", activities);
        Assert.Contains("session create", activities);
        Assert.Contains("session save", activities);
    }

    [Fact]
    public async Task Invalid_options_fail_at_startup_naming_the_option()
    {
        var keys = Directory.CreateTempSubdirectory("cs-keys-");
        try
        {
            var error = await Assert.ThrowsAsync<OptionsValidationException>(() => TestApp.StartAsync(
                new ClusterSession.InMemory.InMemorySessionStore(), keys, options => options.IdleTimeout = TimeSpan.Zero));
            Assert.Contains("ClusterSessionOptions.IdleTimeout", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            keys.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Session_cap_below_one_fails_at_startup_naming_the_option()
    {
        var keys = Directory.CreateTempSubdirectory("cs-keys-");
        try
        {
            var error = await Assert.ThrowsAsync<OptionsValidationException>(() => TestApp.StartAsync(
                new ClusterSession.InMemory.InMemorySessionStore(), keys, options => options.MaxSessionsPerPrincipal = 0));
            Assert.Contains("ClusterSessionOptions.MaxSessionsPerPrincipal", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            keys.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Missing_store_fails_at_startup_saying_how_to_choose_one()
    {
        var keys = Directory.CreateTempSubdirectory("cs-keys-");
        try
        {
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => TestApp.StartCoreAsync(
                keys,
                services => Microsoft.Extensions.DependencyInjection.ClusterSessionServiceCollectionExtensions.AddClusterSession(services, _ => { }),
                app => Microsoft.AspNetCore.Builder.ClusterSessionApplicationBuilderExtensions.UseClusterSession(app)));
            Assert.Contains("options.UseInMemory()", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            keys.Delete(recursive: true);
        }
    }
}
