using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using ClusterSession.Testing.Servers;
using Xunit.Abstractions;

namespace ClusterSession.MultiHost.Tests;

/// <summary>
/// The near cache measured, not assumed (issue 15): three app processes with the near cache on over one store,
/// 8 client loops in parallel. A change acknowledged by one instance (its HTTP response received) is followed at
/// once by requests on other instances that held a copy (a write: both others; a sign-out or revoke: the one that
/// read the session), 10,000 times; the test counts the answers that still show the state before the change
/// (issue 15's target is 0; asserted where the store guarantees it, see <see cref="EndsAreSeenAtOnce"/>, and otherwise
/// reported against docs/near-cache.md's guarantee: every change is seen, none is lost), times how long until those
/// instances show the new state, and meanwhile closes the hosts' invalidation
/// connections on the store's side three times. The numbers are written to the test output
/// (<c>dotnet test --logger "console;verbosity=detailed"</c> shows them). In these runs every read follows a change,
/// so every cache hit is a copy served before its invalidation arrived: the hits counted equal the stale answers.
/// </summary>
public abstract class NearCacheCorrectnessTests(NearCacheHosts fixture, ITestOutputHelper output)
{
    private const int Changes = 10_000;
    private const int Loops = 8;

    /// <summary>The invalidation connections are killed when this many changes have completed.</summary>
    private static readonly int[] KillsAt = [1_500, 4_500, 7_500];

    /// <summary>The whole run of 10,000 changes must finish within this.</summary>
    private static readonly TimeSpan RunDeadline = TimeSpan.FromSeconds(150);

    /// <summary>An instance still showing the old state this long after the acknowledgement counts as never seeing the change.</summary>
    private static readonly TimeSpan SeenDeadline = TimeSpan.FromSeconds(5);

    private static readonly TimeSpan Window = TimeSpan.FromSeconds(1);

    private static readonly int[][] Orders = [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 2, 1], [1, 0, 2], [2, 1, 0]];

    /// <summary>
    /// Whether the store guarantees that no instance serves a session after an acknowledged sign-out or revoke
    /// (docs/near-cache.md, "What it guarantees"); then the test asserts 0 accepted after revocation. Otherwise the
    /// count is the delivery window and is reported, and the test asserts the guarantee that remains: every end is
    /// seen by every instance, none lost, through the kills.
    /// </summary>
    protected virtual bool EndsAreSeenAtOnce => true;

    private IReadOnlyList<AppHost> Hosts => fixture.Hosts;

    [Fact]
    public async Task A_write_acknowledged_by_one_instance_is_read_at_once_on_the_other_two_10000_times_through_invalidation_connection_kills()
    {
        await UntilEveryCacheServesAsync();

        var result = await RunAsync(loop =>
        {
            var browser = new Browser();
            return async (i, run) =>
            {
                // The writer rotates, so every instance writes, and reads what the others wrote, in turn.
                var (writer, readers) = Rotation(i);
                var value = string.Create(CultureInfo.InvariantCulture, $"{loop}-{i}");
                var sent = Stopwatch.GetTimestamp();
                var (status, _) = await browser.PostAsync(writer, "/session/v/" + value);
                run.Wrote(Stopwatch.GetElapsedTime(sent));
                if (status != HttpStatusCode.OK)
                {
                    run.Error($"a write answered {(int)status}");
                    return;
                }

                var acknowledged = Stopwatch.GetTimestamp();
                await run.ObserveAsync(acknowledged, readers.Select(reader =>
                {
                    var copy = browser.Clone();
                    return (Func<Task<Seen>>)(async () => await copy.GetAsync(reader, "/session/v") switch
                    {
                        (HttpStatusCode.OK, var body) when body == value => Seen.New,
                        (HttpStatusCode.OK, _) => Seen.Old,
                        var (other, _) => run.Error($"a read answered {(int)other}"),
                    });
                }));
            };
        });

        Report(result, "writes", "reads of the value on the other two instances", "stale reads", "both other instances serve the new value");
        // A write returns once every live instance applied its invalidation (docs/near-cache.md, "Never stale"): no read
        // that starts after the acknowledgement shows the value before it, through the connection kills too.
        AssertRun(result, "stale reads (the value before the acknowledged write)", zeroGuaranteed: true);
    }

    [Fact]
    public async Task A_sign_out_or_revoke_on_one_instance_rejects_the_old_cookie_at_once_on_another_10000_times_through_invalidation_connection_kills()
    {
        await UntilEveryCacheServesAsync();

        var result = await RunAsync(loop =>
        {
            var user = string.Create(CultureInfo.InvariantCulture, $"user{loop}");
            return async (i, run) =>
            {
                // Signed in on one instance, read on a second (which then holds a copy), ended on the third: every
                // ordered pair of revoking and reading instance in turn.
                var (signer, reader, revoker) = Order(i);
                var browser = new Browser();
                if ((await browser.PostAsync(signer, "/signin/" + user)).Status != HttpStatusCode.OK)
                {
                    run.Error("a sign-in failed");
                    return;
                }

                if (await browser.GetAsync(reader, "/me") != (HttpStatusCode.OK, user))
                {
                    run.Error("a sign-in was not seen at once on another instance");
                    return;
                }

                var oldCookies = browser.Clone();
                var signOut = i / Loops % 2 == 0;
                var ended = signOut
                    ? (await browser.PostAsync(revoker, "/signout")).Status == HttpStatusCode.OK
                    : await new Browser().PostAsync(revoker, "/revoke-all/" + user) == (HttpStatusCode.OK, "1");
                if (!ended)
                {
                    run.Error(signOut ? "a sign-out failed" : "a revoke did not end exactly one session");
                    return;
                }

                var acknowledged = Stopwatch.GetTimestamp();
                await run.ObserveAsync(acknowledged, [async () => await oldCookies.GetAsync(reader, "/me") switch
                {
                    (HttpStatusCode.Unauthorized, _) => Seen.New,
                    (HttpStatusCode.OK, _) => Seen.Old,
                    var (other, _) => run.Error($"a request with the old cookie answered {(int)other}"),
                }]);
            };
        });

        Report(result, "sign-outs and revokes (alternating)", "requests with the old cookie on the instance that had read the session", "accepted after revocation", "that instance rejects the old cookie");
        AssertRun(result, "requests accepted after revocation (the old cookie still signed in)", zeroGuaranteed: EndsAreSeenAtOnce);
    }

    /// <summary>Change <paramref name="n"/>'s instance and the two that then read: every ordered pair in turn.</summary>
    private (AppHost Changer, AppHost[] Readers) Rotation(int n)
    {
        var changer = n % Hosts.Count;
        return (Hosts[changer], [.. Hosts.Where((_, k) => k != changer)]);
    }

    /// <summary>The three instances in the <paramref name="n"/>th of their six orders (taken in turn).</summary>
    private (AppHost, AppHost, AppHost) Order(int n)
    {
        int[] order = Orders[n % Orders.Length];
        return (Hosts[order[0]], Hosts[order[1]], Hosts[order[2]]);
    }

    /// <summary>
    /// Waits until every host's near cache serves a read (a session written, then read twice on the host), so a run
    /// measures the cache, not a store read; fails when a host's cache never does.
    /// </summary>
    private async Task UntilEveryCacheServesAsync()
    {
        foreach (var host in Hosts)
        {
            var before = await NearCacheHosts.CountersAsync(host);
            var browser = new Browser();
            Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(host, "/session/warm/up")).Status);
            await ServerProcess.UntilAsync(
                async () =>
                {
                    Assert.Equal((HttpStatusCode.OK, "up"), await browser.GetAsync(host, "/session/warm"));
                    return (await NearCacheHosts.CountersAsync(host)).Hits > before.Hits;
                },
                TimeSpan.FromSeconds(30),
                $"the near cache of the host on {host.Address} serves a read (is the store using its near cache?)");
        }
    }

    /// <summary>
    /// Runs <see cref="Changes"/> changes in <see cref="Loops"/> parallel loops (<paramref name="loop"/> gives each
    /// loop its own state and returns its step), killing the invalidation connections at <see cref="KillsAt"/>,
    /// with the hosts' near-cache counters sampled throughout. Bounded by <see cref="RunDeadline"/>.
    /// </summary>
    private async Task<Run> RunAsync(Func<int, Func<int, Run, Task>> loop)
    {
        var run = new Run(fixture);
        using var deadline = new CancellationTokenSource(RunDeadline);
        var sampling = run.SampleAsync(deadline.Token);
        var loops = Enumerable.Range(0, Loops).Select(l => Task.Run(async () =>
        {
            var step = loop(l);
            for (var i = l; i < Changes && !deadline.IsCancellationRequested; i += Loops)
            {
                await step(i, run);
                run.Completed();
            }
        }));
        await Task.WhenAll(loops);
        await run.FinishAsync();
        await deadline.CancelAsync();
        await sampling;

        // After the kills every cache must come back: a store that turned its cache off for good would pass the rest.
        await UntilEveryCacheServesAsync();
        return run;
    }

    private void AssertRun(Run run, string wrongAnswers, bool zeroGuaranteed)
    {
        Assert.True(run.CompletedCount == Changes, $"Only {run.CompletedCount} of {Changes} changes completed within {RunDeadline.TotalSeconds:0} s.");
        Assert.True(run.ErrorCount == 0, $"{run.ErrorCount} requests failed, e.g.: {string.Join("; ", run.ErrorSamples)}");
        Assert.Equal(KillsAt.Length, run.Kills.Count);
        Assert.True(run.Kills[0].Closed >= Hosts.Count, $"The first kill closed {run.Kills[0].Closed} connections; each of the {Hosts.Count} hosts had one.");
        Assert.True(run.Totals.Flushes >= KillsAt.Length, $"The caches were flushed {run.Totals.Flushes} times for {KillsAt.Length} kills: a host did not notice its channel going down.");

        // The checks ran against held copies: each change dropped copies on the instances that read it before.
        Assert.True(run.Totals.Invalidations >= Changes / 2, $"Only {run.Totals.Invalidations} cached copies were dropped by invalidations over {Changes} changes: the checking instances mostly held no copy.");
        if (zeroGuaranteed)
        {
            Assert.True(run.StaleFirst == 0, $"{run.StaleFirst} {wrongAnswers} right after the acknowledgement.");
            Assert.True(run.StaleAny == 0, $"{run.StaleAny} {wrongAnswers} in all.");
        }

        Assert.True(run.NeverSeen == 0, $"{run.NeverSeen} times an instance did not see the change within {SeenDeadline.TotalSeconds:0} s.");
    }

    private void Report(Run run, string changes, string checks, string wrong, string seen)
    {
        var lines = new StringBuilder();
        void Line(FormattableString text) => lines.AppendLine(text.ToString(CultureInfo.InvariantCulture));
        Line($"Near cache over {fixture.StoreName}: {Hosts.Count} app processes, {Loops} client loops, {run.CompletedCount:N0} {changes} in {run.Elapsed.TotalSeconds:0.0} s, {run.Checks:N0} {checks}");
        Line($"  {wrong}: {run.StaleFirst} (first answer after the acknowledgement), {run.StaleAny} (every answer while waiting, asked about every ms); never seen within {SeenDeadline.TotalSeconds:0} s: {run.NeverSeen}; failed requests: {run.ErrorCount}");
        var p = run.Propagation;
        Line($"  acknowledgement -> {seen} (as a client sees it, one request each): p50 {p.P50:0.00} ms, p99 {p.P99:0.00} ms, max {p.Max:0.00} ms over {p.Count:N0} changes");
        if (run.Writes is { Count: > 0 } w)
        {
            Line($"  write (POST, as the client sees it, 8 loops at once): p50 {w.P50:0.00} ms, p99 {w.P99:0.00} ms, max {w.Max:0.00} ms over {w.Count:N0} writes");
        }
        Line($"  near cache, 3 hosts, over the run: {run.Totals}");
        for (var k = 0; k < run.Kills.Count; k++)
        {
            var kill = run.Kills[k];
            var next = k + 1 < run.Kills.Count ? run.Kills[k + 1].At : run.Elapsed;
            Line($"  kill at {kill.AtChange:N0} changes (t {kill.At.TotalSeconds:0.00} s): {fixture.KillCommand} closed {kill.Closed} connection(s)");
            Line($"    {Window.TotalSeconds:0} s before: {run.Between(kill.At - Window, kill.At)}; {wrong}: {run.StaleBetween(kill.At - Window, kill.At)}");
            Line($"    {Window.TotalSeconds:0} s after:  {run.Between(kill.At, kill.At + Window)}; {wrong}: {run.StaleBetween(kill.At, kill.At + Window)}");
            Line($"    the {Window.TotalSeconds:0} s after that: {run.Between(kill.At + Window, kill.At + (2 * Window))}; {wrong}: {run.StaleBetween(kill.At + Window, kill.At + (2 * Window))}");
            Line($"    per host: {string.Join("; ", Enumerable.Range(0, Hosts.Count).Select(h => run.Recovery(h, kill.At, next)))}");
        }

        output.WriteLine(lines.ToString());
    }

    /// <summary>What a request after a change showed.</summary>
    private enum Seen
    {
        /// <summary>The state after the change.</summary>
        New,

        /// <summary>The state before the change: stale.</summary>
        Old,

        /// <summary>Neither: the request failed.</summary>
        Error,
    }

    private sealed record Kill(int AtChange, TimeSpan At, long Closed);

    private sealed record Sample(TimeSpan At, NearCacheCounters[] PerHost);

    private sealed record Percentiles(double P50, double P99, double Max, int Count);

    /// <summary>One run's outcomes, shared by its loops.</summary>
    private sealed class Run(NearCacheHosts fixture)
    {
        private static readonly TimeSpan SampleEvery = TimeSpan.FromMilliseconds(100);
        private readonly long _started = Stopwatch.GetTimestamp();
        private readonly ConcurrentQueue<double> _propagationMs = new();
        private readonly ConcurrentQueue<double> _writeMs = new();
        private readonly ConcurrentQueue<string> _errors = new();
        private readonly ConcurrentQueue<TimeSpan> _staleAt = new();
        private readonly List<Sample> _samples = [];
        private readonly List<Task<Kill>> _kills = [];
        private int _completed;
        private int _staleFirst;
        private int _staleAny;
        private int _neverSeen;
        private int _errorCount;
        private int _checks;

        public int CompletedCount => Volatile.Read(ref _completed);

        public int StaleFirst => _staleFirst;

        public int StaleAny => _staleAny;

        public int NeverSeen => _neverSeen;

        public int ErrorCount => _errorCount;

        public int Checks => _checks;

        public IEnumerable<string> ErrorSamples => _errors.Take(5);

        public TimeSpan Elapsed { get; private set; }

        public List<Kill> Kills { get; } = [];

        public NearCacheCounters Totals { get; private set; } = NearCacheCounters.Zero;

        public Percentiles Writes => Of(_writeMs);

        public void Wrote(TimeSpan elapsed) => _writeMs.Enqueue(elapsed.TotalMilliseconds);

        public Percentiles Propagation => Of(_propagationMs);

        private TimeSpan Now => Stopwatch.GetElapsedTime(_started);

        private static Percentiles Of(IEnumerable<double> values)
        {
            var sorted = values.Order().ToArray();
            return sorted.Length == 0
                ? new Percentiles(double.NaN, double.NaN, double.NaN, 0)
                : new Percentiles(At(0.50), At(0.99), sorted[^1], sorted.Length);

            double At(double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
        }

        public Seen Error(string what)
        {
            Interlocked.Increment(ref _errorCount);
            if (_errors.Count < 20)
            {
                _errors.Enqueue(what);
            }

            return Seen.Error;
        }

        /// <summary>
        /// Runs each read (concurrently) until it shows the new state; counts a first answer showing the old state
        /// as stale, and records the time from <paramref name="acknowledged"/> until the last reader showed the new one.
        /// </summary>
        public async Task ObserveAsync(long acknowledged, IEnumerable<Func<Task<Seen>>> reads)
        {
            var seenAfter = await Task.WhenAll(reads.Select(async read =>
            {
                Interlocked.Increment(ref _checks);
                for (var first = true; ; first = false)
                {
                    switch (await read())
                    {
                        case Seen.New:
                            return Stopwatch.GetElapsedTime(acknowledged);
                        case Seen.Error:
                            return (TimeSpan?)null;
                        default:
                            Interlocked.Increment(ref _staleAny);
                            if (first)
                            {
                                Interlocked.Increment(ref _staleFirst);
                                _staleAt.Enqueue(Now);
                            }

                            if (Stopwatch.GetElapsedTime(acknowledged) > SeenDeadline)
                            {
                                Interlocked.Increment(ref _neverSeen);
                                return null;
                            }

                            // Asked again about every millisecond: close enough to time it, without flooding a slow instance.
                            await Task.Delay(1);
                            break;
                    }
                }
            }));
            if (seenAfter.All(t => t is not null))
            {
                _propagationMs.Enqueue(seenAfter.Max(t => t!.Value.TotalMilliseconds));
            }
        }

        /// <summary>Counts a completed change; at a kill threshold, closes the invalidation connections (without waiting).</summary>
        public void Completed()
        {
            var done = Interlocked.Increment(ref _completed);
            if (KillsAt.Contains(done))
            {
                var at = Now;
                lock (_kills)
                {
                    _kills.Add(Task.Run(async () => new Kill(done, at, await fixture.KillInvalidationConnectionsAsync())));
                }
            }
        }

        /// <summary>Samples every host's counters until <paramref name="stop"/>, then once more.</summary>
        public async Task SampleAsync(CancellationToken stop)
        {
            while (!stop.IsCancellationRequested)
            {
                await TakeSampleAsync();
                try
                {
                    await Task.Delay(SampleEvery, stop);
                }
                catch (OperationCanceledException)
                {
                }
            }

            await TakeSampleAsync();
        }

        /// <summary>Waits for the kills; records the run's length and its totals.</summary>
        public async Task FinishAsync()
        {
            Elapsed = Now;
            Task<Kill>[] kills;
            lock (_kills)
            {
                kills = [.. _kills];
            }

            Kills.AddRange(await Task.WhenAll(kills));
            await TakeSampleAsync();
            lock (_samples)
            {
                Totals = Sum(_samples[^1]) - Sum(_samples[0]);
            }
        }

        /// <summary>How many checks' first answers were stale in [<paramref name="from"/>, <paramref name="to"/>).</summary>
        public int StaleBetween(TimeSpan from, TimeSpan to) => _staleAt.Count(t => t >= from && t < to);

        /// <summary>The counters of all hosts summed over [<paramref name="from"/>, <paramref name="to"/>] (to the nearest samples).</summary>
        public string Between(TimeSpan from, TimeSpan to)
        {
            lock (_samples)
            {
                var last = _samples[^1].At;
                var delta = Sum(Before(to)) - Sum(Before(from));
                return to > last ? $"{delta} (the run ended {(to - last).TotalSeconds:0.0} s early)" : delta.ToString();
            }
        }

        /// <summary>
        /// When host <paramref name="host"/> emptied its cache after the kill at <paramref name="kill"/> (a flush counts
        /// only when the cache held copies) and when it used copies again (a hit, or an invalidation of a copy it held),
        /// both before <paramref name="next"/> (the next kill or the end of the run).
        /// </summary>
        public string Recovery(int host, TimeSpan kill, TimeSpan next)
        {
            lock (_samples)
            {
                var before = Before(kill).PerHost[host];
                var window = _samples.Where(s => s.At >= kill && s.At <= next).ToList();
                var flushed = window.FirstOrDefault(s => s.PerHost[host].Flushes > before.Flushes);
                var from = flushed ?? Before(kill);
                var used = window.FirstOrDefault(s => s.At > from.At
                    && s.PerHost[host].Hits + s.PerHost[host].Invalidations > from.PerHost[host].Hits + from.PerHost[host].Invalidations);
                var flush = flushed is null ? "no flush counted" : $"flushed within {(flushed.At - kill).TotalMilliseconds:0} ms";
                var back = used is null ? $"no copy used in the {(next - kill).TotalSeconds:0.0} s to the next kill or the end" : $"using copies again within {(used.At - kill).TotalMilliseconds:0} ms";
                return string.Create(CultureInfo.InvariantCulture, $"host {host + 1} {flush}, {back}");
            }
        }

        private static NearCacheCounters Sum(Sample sample) => sample.PerHost.Aggregate(NearCacheCounters.Zero, (a, b) => a + b);

        private Sample Before(TimeSpan at) => _samples.LastOrDefault(s => s.At <= at) ?? _samples[0];

        private async Task TakeSampleAsync()
        {
            var perHost = await Task.WhenAll(fixture.Hosts.Select(h => NearCacheHosts.CountersAsync(h)));
            lock (_samples)
            {
                _samples.Add(new Sample(Now, perHost));
            }
        }
    }
}

/// <summary>Over a redis-server.</summary>
public sealed class RedisNearCacheCorrectnessTests(RedisNearCacheHosts hosts, ITestOutputHelper output)
    : NearCacheCorrectnessTests(hosts, output), IClassFixture<RedisNearCacheHosts>;

/// <summary>Over a Redis Cluster of three masters.</summary>
public sealed class RedisClusterNearCacheCorrectnessTests(RedisClusterNearCacheHosts hosts, ITestOutputHelper output)
    : NearCacheCorrectnessTests(hosts, output), IClassFixture<RedisClusterNearCacheHosts>;

/// <summary>Over PostgreSQL.</summary>
public sealed class PostgresNearCacheCorrectnessTests(PostgresNearCacheHosts hosts, ITestOutputHelper output)
    : NearCacheCorrectnessTests(hosts, output), IClassFixture<PostgresNearCacheHosts>;
