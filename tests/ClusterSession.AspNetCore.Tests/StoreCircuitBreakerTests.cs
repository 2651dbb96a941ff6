using System.Diagnostics.Metrics;
using ClusterSession.AspNetCore.Configuration;
using ClusterSession.AspNetCore.Diagnostics;
using ClusterSession.AspNetCore.Resilience;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>The circuit breaker's state machine, driven by a fake clock.</summary>
public sealed class StoreCircuitBreakerTests : IDisposable
{
    private static readonly TimeSpan Break = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan StoreTimeout = TimeSpan.FromSeconds(2);

    private readonly FakeTimeProvider _time = new();
    private readonly StoreCircuitBreaker _circuit;

    public StoreCircuitBreakerTests()
        => _circuit = new StoreCircuitBreaker(new StoreCircuitBreakerOptions { FailureThreshold = 3, BreakDuration = Break }, StoreTimeout, _time, NullLogger.Instance);

    public void Dispose() => _circuit.Dispose();

    private static SessionStoreUnavailableException Outage() => new("refused");

    private void Fail(int times)
    {
        for (var i = 0; i < times; i++)
        {
            _circuit.Report(_circuit.Enter("load"), Outage());
        }
    }

    [Fact]
    public void Threshold_outages_in_a_row_open_the_circuit_and_calls_then_fail_at_once_with_the_time_to_the_next_try()
    {
        Fail(2);
        Assert.Equal(CircuitState.Closed, _circuit.State);
        Assert.Equal(CircuitPermit.Call, _circuit.Enter("load"));

        Fail(1);
        Assert.Equal(CircuitState.Open, _circuit.State);
        _time.Advance(TimeSpan.FromSeconds(2));
        var error = Assert.Throws<SessionStoreUnavailableException>(() => _circuit.Enter("save"));

        Assert.Equal(TimeSpan.FromSeconds(3), error.RetryAfter);
        Assert.Contains("circuit open", error.Message, StringComparison.Ordinal);
        Assert.Contains("save", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Gone_conflict_limit_bad_input_and_cancelled_calls_never_open_the_circuit()
    {
        Exception[] notOutages =
        [
            new SessionGoneException("gone"), new SessionConflictException("conflict"), new SessionLimitExceededException("limit"),
            new ArgumentException("bad id"), new OperationCanceledException(),
        ];
        for (var round = 0; round < 5; round++)
        {
            foreach (var error in notOutages)
            {
                _circuit.Report(_circuit.Enter("save"), error);
            }
        }

        Assert.Equal(CircuitState.Closed, _circuit.State);
    }

    [Fact]
    public void A_call_the_store_answers_resets_the_count_of_outages_in_a_row()
    {
        Fail(2);
        _circuit.Report(_circuit.Enter("load"), error: null);
        Fail(2);
        _circuit.Report(_circuit.Enter("save"), new SessionGoneException("gone"));
        Fail(2);

        Assert.Equal(CircuitState.Closed, _circuit.State);
        Fail(1);
        Assert.Equal(CircuitState.Open, _circuit.State);
    }

    [Fact]
    public void After_the_break_exactly_one_call_tries_the_store_and_the_others_still_fail_at_once()
    {
        Fail(3);
        _time.Advance(Break - TimeSpan.FromMilliseconds(1));
        Assert.Throws<SessionStoreUnavailableException>(() => _circuit.Enter("load"));

        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(CircuitPermit.Probe, _circuit.Enter("load"));
        Assert.Equal(CircuitState.HalfOpen, _circuit.State);
        var other = Assert.Throws<SessionStoreUnavailableException>(() => _circuit.Enter("load"));
        Assert.Equal(Break, other.RetryAfter);
    }

    [Fact]
    public void A_call_that_will_not_reach_the_store_fails_fast_with_the_retry_hint_while_open_and_never_becomes_the_probe()
    {
        _circuit.ThrowIfOpen("load");
        Fail(3);
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(TimeSpan.FromSeconds(3), Assert.Throws<SessionStoreUnavailableException>(() => _circuit.ThrowIfOpen("save")).RetryAfter);

        // The next try is due: a call past its request's deadline still fails fast, and leaves the probe to a real call.
        _time.Advance(Break);
        Assert.NotNull(Assert.Throws<SessionStoreUnavailableException>(() => _circuit.ThrowIfOpen("save")).RetryAfter);
        Assert.Equal(CircuitState.Open, _circuit.State);
        Assert.Equal(CircuitPermit.Probe, _circuit.Enter("load"));
    }

    [Fact]
    public void A_probe_the_store_answers_closes_the_circuit()
    {
        Fail(3);
        _time.Advance(Break);
        var probe = _circuit.Enter("load");

        _circuit.Report(probe, error: null);

        Assert.Equal(CircuitState.Closed, _circuit.State);
        Assert.Equal(CircuitPermit.Call, _circuit.Enter("load"));
        Fail(2);
        Assert.Equal(CircuitState.Closed, _circuit.State);
    }

    [Fact]
    public void A_failed_probe_opens_the_circuit_for_another_full_break()
    {
        Fail(3);
        _time.Advance(Break + TimeSpan.FromSeconds(10));
        var probe = _circuit.Enter("load");
        _time.Advance(TimeSpan.FromSeconds(1));

        _circuit.Report(probe, Outage());

        Assert.Equal(CircuitState.Open, _circuit.State);
        Assert.Equal(Break, Assert.Throws<SessionStoreUnavailableException>(() => _circuit.Enter("load")).RetryAfter);
        _time.Advance(Break);
        Assert.Equal(CircuitPermit.Probe, _circuit.Enter("load"));
    }

    [Fact]
    public void A_cancelled_probe_lets_the_next_call_try_at_once()
    {
        Fail(3);
        _time.Advance(Break);
        _circuit.Report(_circuit.Enter("load"), new OperationCanceledException());

        Assert.Equal(CircuitState.Open, _circuit.State);
        Assert.Equal(CircuitPermit.Probe, _circuit.Enter("load"));
    }

    [Fact]
    public void A_probe_that_never_reports_back_holds_the_circuit_for_one_store_timeout_and_one_break_only()
    {
        Fail(3);
        _time.Advance(Break);
        Assert.Equal(CircuitPermit.Probe, _circuit.Enter("load"));

        _time.Advance(StoreTimeout + Break - TimeSpan.FromMilliseconds(1));
        Assert.Throws<SessionStoreUnavailableException>(() => _circuit.Enter("load"));
        _time.Advance(TimeSpan.FromMilliseconds(1));

        Assert.Equal(CircuitPermit.Probe, _circuit.Enter("load"));
    }

    [Fact]
    public void Late_outages_of_calls_started_before_the_circuit_opened_neither_count_nor_extend_the_break()
    {
        var inFlight = Enumerable.Range(0, 5).Select(_ => _circuit.Enter("load")).ToList();
        foreach (var permit in inFlight.Take(3))
        {
            _circuit.Report(permit, Outage());
        }

        _time.Advance(Break - TimeSpan.FromSeconds(1));
        foreach (var permit in inFlight.Skip(3))
        {
            _circuit.Report(permit, Outage());
        }

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(CircuitPermit.Probe, _circuit.Enter("load"));
    }

    [Fact]
    public void A_late_answer_of_a_call_started_before_the_circuit_opened_closes_it()
    {
        var slow = _circuit.Enter("load");
        Fail(3);

        _circuit.Report(slow, error: null);

        Assert.Equal(CircuitState.Closed, _circuit.State);
    }

    [Fact]
    public async Task Many_threads_at_once_after_the_break_get_exactly_one_probe()
    {
        Fail(3);
        _time.Advance(Break);
        const int Threads = 16;
        using var start = new Barrier(Threads);
        var probes = 0;
        var fastFailures = 0;

        await Task.WhenAll(Enumerable.Range(0, Threads).Select(_ => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait(TimeSpan.FromSeconds(10));
            for (var i = 0; i < 200; i++)
            {
                try
                {
                    if (_circuit.Enter("load") == CircuitPermit.Probe)
                    {
                        Interlocked.Increment(ref probes);
                    }
                }
                catch (SessionStoreUnavailableException)
                {
                    Interlocked.Increment(ref fastFailures);
                }
            }
        }, TaskCreationOptions.LongRunning)));

        Assert.Equal(1, probes);
        Assert.Equal((Threads * 200) - 1, fastFailures);
    }

    [Fact]
    public void A_disabled_breaker_never_opens()
    {
        using var off = new StoreCircuitBreaker(new StoreCircuitBreakerOptions { Enabled = false, FailureThreshold = 1 }, StoreTimeout, _time, NullLogger.Instance);
        for (var i = 0; i < 10; i++)
        {
            off.Report(off.Enter("load"), Outage());
        }

        Assert.Equal(CircuitState.Closed, off.State);
        Assert.Equal(CircuitPermit.Untracked, off.Enter("load"));
    }

    [Theory]
    [InlineData(0, "1")]
    [InlineData(100, "1")]
    [InlineData(1000, "1")]
    [InlineData(1001, "2")]
    [InlineData(4500, "5")]
    public void Retry_after_is_whole_seconds_rounded_up_and_at_least_one(int milliseconds, string header)
        => Assert.Equal(header, StoreCircuitBreaker.FormatRetryAfter(TimeSpan.FromMilliseconds(milliseconds)));

    [Fact]
    public void Invalid_breaker_options_are_rejected_naming_the_option()
    {
        var validator = new ClusterSessionOptionsValidator();
        var options = new ClusterSessionOptions();
        options.CircuitBreaker.FailureThreshold = 0;
        options.CircuitBreaker.BreakDuration = TimeSpan.FromMilliseconds(10);

        var result = validator.Validate(null, options);

        Assert.True(result.Failed);
        Assert.Contains("ClusterSessionOptions.CircuitBreaker.FailureThreshold", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("ClusterSessionOptions.CircuitBreaker.BreakDuration", result.FailureMessage, StringComparison.Ordinal);
        Assert.True(validator.Validate(null, new ClusterSessionOptions()).Succeeded);
    }
}

/// <summary>The breaker's metrics. Alone, because the state metric counts every circuit in the process.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CircuitMetricsCollection
{
    public const string Name = "circuit metrics";
}

[Collection(CircuitMetricsCollection.Name)]
public sealed class StoreCircuitMetricsTests
{
    [Fact]
    public void The_state_metric_counts_this_circuit_in_its_state_and_fast_failures_are_counted()
    {
        using var metrics = new SessionMetrics(meterFactory: null);
        long fastFailures = 0;
        var states = new Dictionary<string, int>(StringComparer.Ordinal);
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter == metrics.Meter && instrument.Name is "cluster_session.store.circuit.state" or "cluster_session.store.fast_failures")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            if (tags.ToArray().Any(t => t.Key == SessionDiagnostics.OperationTag && (string?)t.Value == "probe-test"))
            {
                Interlocked.Add(ref fastFailures, value);
            }
        });
        listener.SetMeasurementEventCallback<int>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == SessionDiagnostics.CircuitStateTag)
                {
                    states[(string)tag.Value!] = value;
                }
            }
        });
        listener.Start();

        using var circuit = new StoreCircuitBreaker(new StoreCircuitBreakerOptions { FailureThreshold = 3 }, TimeSpan.FromSeconds(5), new FakeTimeProvider(), NullLogger.Instance, metrics);
        listener.RecordObservableInstruments();
        var openBefore = states["open"];
        Assert.Equal(1, states["closed"]);
        for (var i = 0; i < 3; i++)
        {
            circuit.Report(circuit.Enter("load"), new SessionStoreUnavailableException("refused"));
        }

        Assert.Throws<SessionStoreUnavailableException>(() => circuit.Enter("probe-test"));
        Assert.Throws<SessionStoreUnavailableException>(() => circuit.Enter("probe-test"));
        listener.RecordObservableInstruments();

        Assert.Equal(openBefore + 1, states["open"]);
        Assert.Equal(2, Interlocked.Read(ref fastFailures));
    }
}
