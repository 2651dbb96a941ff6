using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using ClusterSession.Bench.Contenders;
using ClusterSession.Redis;

namespace ClusterSession.Bench;

/// <summary>
/// Does a request cost more when Redis holds more sessions (issue 15: it must not)? For each ClusterSession contender
/// over Redis, on an emptied keyspace: sessions of the benchmark's shape (10 attributes of 100 bytes) are written
/// straight into the store (the contender's key prefix, the store's own scripts, many calls in flight on one
/// pipelined connection, bounded by count and by time) up to the base count, read and write are measured, the
/// keyspace is filled up to N and they are measured again; then it is emptied, filled to the base count again
/// and measured a third time, so that machine drift shows. Each request picks a random session out of a sample
/// spread over all the sessions present, so the keyspace's size is what the server walks. Memory per session is
/// the growth of <c>used_memory</c> divided by the sessions added.
/// </summary>
internal static class ScaleRun
{
    /// <summary>Store calls in flight while loading: enough to fill the pipeline, few enough to leave the CPUs to Redis.</summary>
    private const int FillInFlight = 128;

    /// <summary>The most sessions a measurement picks from.</summary>
    private const int SamplePool = 10_000;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static async Task<string> RunAsync(BenchOptions options, TextWriter output, CancellationToken cancellationToken)
    {
        var contenders = ContenderCatalog.All
            .OfType<ClusterSessionContender>()
            .Where(c => c.RedisKeyPrefix is not null && (options.Contenders is null || options.Contenders.Contains(c.Name)))
            .ToList();
        if (contenders.Count == 0)
        {
            throw new InvalidOperationException("--scale measures ClusterSession contenders over Redis; --contenders named none.");
        }

        var total = Stopwatch.StartNew();
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"scale: {options.ScaleSessions:N0} sessions against {options.ScaleBaseSessions:N0}, profile {options.Profile}: {options.Rounds} rounds x {options.CellDuration.TotalSeconds} s per cell, 1 connection, injected RTT {options.RttMs} ms, loads bounded to {options.ScaleFillLimit.TotalSeconds} s each"));
        using var redis = await RedisServerProcess.StartAsync(cancellationToken);
        await using var probe = await RedisProbe.ConnectAsync(redis.Port);
        await using var proxy = new LatencyProxy(new IPEndPoint(IPAddress.Loopback, redis.Port), options.RttMs);
        var stores = new StoreEndpoints(BenchHarness.RedisConfigurationFor(proxy.Port), PostgresConnectionString: null);

        var results = new List<ScaleResult>();
        foreach (var contender in contenders)
        {
            await probe.FlushAllAsync();
            await using var host = await ContenderHost.StartAsync(contender, stores, cancellationToken);
            await using var store = new RedisSessionStore(new RedisSessionStoreOptions
            {
                // Direct, not through the proxy: loading is set-up, not measured.
                Configuration = $"127.0.0.1:{redis.Port},abortConnect=false,syncTimeout=30000,asyncTimeout=30000",
                KeyPrefix = contender.RedisKeyPrefix!,
                OperationTimeout = TimeSpan.FromSeconds(30),
            });

            var empty = await UsedMemoryAsync(probe);
            var loader = new Loader(store, options.ScaleBaseSessions, options.ScaleSessions);
            await loader.LoadAsync(options.ScaleBaseSessions, options.ScaleFillLimit, cancellationToken);
            var baseMemory = (double)(await UsedMemoryAsync(probe) - empty) / loader.Created;
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{contender.Name}: {loader.Created:N0} sessions loaded ({total.Elapsed.TotalSeconds:F0} s)"));
            var atBase = await MeasureAsync(host, loader.BasePool, options, probe, proxy, cancellationToken);

            var fill = Stopwatch.StartNew();
            await loader.LoadAsync(options.ScaleSessions, options.ScaleFillLimit, cancellationToken);
            var fillSeconds = fill.Elapsed.TotalSeconds;
            var reached = loader.Created;
            var scaleMemory = (double)(await UsedMemoryAsync(probe) - empty) / reached;
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"{contender.Name}: {reached:N0} sessions loaded, {reached - options.ScaleBaseSessions:N0} in {fillSeconds:F0} s ({(reached - options.ScaleBaseSessions) / fillSeconds:F0}/s; {total.Elapsed.TotalSeconds:F0} s)"));
            var atScale = await MeasureAsync(host, loader.ScalePool, options, probe, proxy, cancellationToken);

            await probe.FlushAllAsync();
            var again = new Loader(store, options.ScaleBaseSessions, options.ScaleBaseSessions);
            await again.LoadAsync(options.ScaleBaseSessions, options.ScaleFillLimit, cancellationToken);
            var atBaseAfter = await MeasureAsync(host, again.BasePool, options, probe, proxy, cancellationToken);
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{contender.Name}: back at {again.Created:N0} sessions, measured again ({total.Elapsed.TotalSeconds:F0} s)"));

            results.Add(ScaleResult.Create(contender.Name, options, reached, fillSeconds, baseMemory, scaleMemory, atBase, atScale, atBaseAfter));
            await probe.FlushAllAsync();
        }

        await output.WriteLineAsync();
        await output.WriteLineAsync(Render(results));
        var errors = results.Sum(r => r.Errors);
        if (errors > 0)
        {
            await output.WriteLineAsync($"WARNING: {errors} requests failed or answered with an error status.");
        }

        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"done in {total.Elapsed.TotalSeconds:F0} s"));
        var server = await probe.InfoAsync("server");
        return JsonSerializer.Serialize(new ScaleReport(options.RttMs, options.Profile, server.GetValueOrDefault("redis_version"), results), Json);
    }

    /// <summary>Read and write at one connection, each request on a random session of <paramref name="ids"/>.</summary>
    private static async Task<Phase> MeasureAsync(ContenderHost host, IReadOnlyList<string> ids, BenchOptions options, RedisProbe probe, LatencyProxy proxy, CancellationToken cancellationToken)
    {
        var cookies = ids.Select(id => ClusterSessionContender.CookieName + "=" + id).ToList();
        using var generator = new LoadGenerator(host.BaseAddress, connections: 1, cookies);
        var cells = new Dictionary<Scenario, (List<long> Latencies, long Requests, long Errors, double Cpu, long Trips)>
        {
            [Scenario.Read] = ([], 0, 0, 0, 0),
            [Scenario.Write] = ([], 0, 0, 0, 0),
        };
        foreach (var scenario in cells.Keys)
        {
            await generator.RunAsync(scenario, options.WarmupDuration, options.CellMaxRequests, cancellationToken);
        }

        for (var round = 0; round < options.Rounds; round++)
        {
            foreach (var scenario in (Scenario[])[Scenario.Read, Scenario.Write])
            {
                var cpuBefore = await probe.CpuSecondsAsync();
                var tripsBefore = proxy.CommandsToServer;
                var sample = await generator.RunAsync(scenario, options.CellDuration, options.CellMaxRequests, cancellationToken);
                var cpu = await probe.CpuSecondsAsync() - cpuBefore;
                var cell = cells[scenario];
                cell.Latencies.AddRange(sample.LatencyTicks);
                cells[scenario] = (cell.Latencies, cell.Requests + sample.Requests, cell.Errors + sample.Errors, cell.Cpu + cpu, cell.Trips + proxy.CommandsToServer - tripsBefore);
            }
        }

        PhaseCell Summary(Scenario scenario)
        {
            var (latencies, requests, errors, cpu, trips) = cells[scenario];
            var sorted = latencies.ToArray();
            Array.Sort(sorted);
            var p50 = sorted.Length == 0 ? 0 : sorted[(sorted.Length - 1) / 2] * 1000.0 / Stopwatch.Frequency;
            var n = Math.Max(1, requests);
            return new PhaseCell(Math.Round(p50, 4), Math.Round(cpu * 1e6 / n, 2), Math.Round((double)trips / n, 3), requests, errors);
        }

        return new Phase(Summary(Scenario.Read), Summary(Scenario.Write));
    }

    private static async Task<long> UsedMemoryAsync(RedisProbe probe)
        => long.Parse((await probe.InfoAsync("memory"))["used_memory"], CultureInfo.InvariantCulture);

    private static string Render(IReadOnlyList<ScaleResult> results)
    {
        var sb = new StringBuilder();
        sb.AppendLine("Scale (issue 15: p50 at N within 1.2x of p50 at the base count). Base figures: mean of before and after the load to N (each shown);");
        sb.AppendLine("each request on a random session of a sample spread over all sessions present; 1 connection.");
        sb.AppendLine("| contender | sessions | bytes/session at base | at N | x | read p50 ms at base (before/after) | at N | x | write p50 ms at base (before/after) | at N | x | store CPU us/read at base (before/after) | at N | x | store CPU us/write at base (before/after) | at N | x |");
        sb.AppendLine("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        foreach (var r in results)
        {
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Contender} | {r.Sessions:N0} of {r.SessionsAsked:N0} vs {r.BaseSessions:N0} | {r.UsedMemoryBytesPerSessionAtBase:F0} | {r.UsedMemoryBytesPerSessionAtN:F0} | {r.UsedMemoryBytesPerSessionRatio:F2} " +
                $"| {r.ReadP50MsAtBase:F3} ({r.ReadP50MsAtBaseBefore:F3}/{r.ReadP50MsAtBaseAfter:F3}) | {r.ReadP50MsAtN:F3} | {r.ReadP50Ratio:F2} " +
                $"| {r.WriteP50MsAtBase:F3} ({r.WriteP50MsAtBaseBefore:F3}/{r.WriteP50MsAtBaseAfter:F3}) | {r.WriteP50MsAtN:F3} | {r.WriteP50Ratio:F2} " +
                $"| {r.StoreCpuUsPerReadAtBase:F1} ({r.StoreCpuUsPerReadAtBaseBefore:F1}/{r.StoreCpuUsPerReadAtBaseAfter:F1}) | {r.StoreCpuUsPerReadAtN:F1} | {Ratio(r.StoreCpuUsPerReadAtN, r.StoreCpuUsPerReadAtBase)} " +
                $"| {r.StoreCpuUsPerWriteAtBase:F1} ({r.StoreCpuUsPerWriteAtBaseBefore:F1}/{r.StoreCpuUsPerWriteAtBaseAfter:F1}) | {r.StoreCpuUsPerWriteAtN:F1} | {Ratio(r.StoreCpuUsPerWriteAtN, r.StoreCpuUsPerWriteAtBase)} |");
        }

        sb.AppendLine();
        foreach (var r in results)
        {
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"{r.Contender}: p50 target (<= 1.2x) {(r.TargetMet ? "met" : "missed")}: read {r.ReadP50Ratio:F2}x, write {r.WriteP50Ratio:F2}x at {r.Sessions:N0} sessions; load {r.LoadSessionsPerSecond:F0} sessions/s.");
        }

        return sb.ToString();
    }

    private static string Ratio(double value, double baseline)
        => baseline > 0 ? (value / baseline).ToString("F2", CultureInfo.InvariantCulture) : "-";

    /// <summary>
    /// Writes sessions through the store with many calls in flight until a count or a time limit, keeping a sample of
    /// ids spread evenly over all of them (every k-th) for the measurements.
    /// </summary>
    private sealed class Loader(RedisSessionStore store, int baseSessions, int sessions)
    {
        private readonly int _baseStride = Math.Max(1, baseSessions / SamplePool);
        private readonly int _scaleStride = Math.Max(1, sessions / SamplePool);
        private readonly List<string> _basePool = [];
        private readonly List<string> _scalePool = [];
        private int _next = -1;
        private int _created;

        public int Created => Volatile.Read(ref _created);

        /// <summary>A sample of the first <c>baseSessions</c> sessions.</summary>
        public IReadOnlyList<string> BasePool => _basePool;

        /// <summary>A sample of all sessions.</summary>
        public IReadOnlyList<string> ScalePool => _scalePool;

        public async Task LoadAsync(int upTo, TimeSpan limit, CancellationToken cancellationToken)
        {
            _next = Created - 1;
            var deadline = Stopwatch.StartNew();
            var now = DateTimeOffset.UtcNow;
            await Task.WhenAll(Enumerable.Range(0, FillInFlight).Select(_ => Task.Run(
                async () =>
                {
                    int i;
                    while (deadline.Elapsed < limit && (i = Interlocked.Increment(ref _next)) < upTo)
                    {
                        var attributes = new Dictionary<string, byte[]>(Workload.AttributeCount, StringComparer.Ordinal);
                        for (var a = 0; a < Workload.AttributeCount; a++)
                        {
                            attributes[Workload.AttributeName(a)] = Workload.NewValue();
                        }

                        var id = SessionId.Create();
                        var session = SessionSnapshot.CreateNew(id, now, TimeSpan.FromMinutes(20), TimeSpan.FromHours(12), attributes);
                        if (!await store.CreateAsync(session, cancellationToken))
                        {
                            throw new InvalidOperationException("A new session id collided with an existing one.");
                        }

                        Interlocked.Increment(ref _created);
                        if (i < baseSessions && i % _baseStride == 0)
                        {
                            lock (_basePool)
                            {
                                _basePool.Add(id);
                            }
                        }

                        if (i % _scaleStride == 0)
                        {
                            lock (_scalePool)
                            {
                                _scalePool.Add(id);
                            }
                        }
                    }
                },
                cancellationToken)));
        }
    }

    private sealed record PhaseCell(double P50Ms, double StoreCpuUsPerRequest, double StoreRoundTripsPerRequest, long Requests, long Errors);

    private sealed record Phase(PhaseCell Read, PhaseCell Write);

    private sealed record ScaleReport(
        double RttMs,
        string Profile,
        string? RedisVersion,
        IReadOnlyList<ScaleResult> Results);

    /// <summary>One contender's figures; the JSON names are these in snake_case (e.g. <c>read_p50_ratio</c>).</summary>
    private sealed record ScaleResult(
        string Contender,
        int SessionsAsked,
        int Sessions,
        int BaseSessions,
        double LoadSeconds,
        double LoadSessionsPerSecond,
        double UsedMemoryBytesPerSessionAtBase,
        double UsedMemoryBytesPerSessionAtN,
        double UsedMemoryBytesPerSessionRatio,
        double ReadP50MsAtBaseBefore,
        double ReadP50MsAtBaseAfter,
        double ReadP50MsAtBase,
        double ReadP50MsAtN,
        double ReadP50Ratio,
        double WriteP50MsAtBaseBefore,
        double WriteP50MsAtBaseAfter,
        double WriteP50MsAtBase,
        double WriteP50MsAtN,
        double WriteP50Ratio,
        double StoreCpuUsPerReadAtBaseBefore,
        double StoreCpuUsPerReadAtBaseAfter,
        double StoreCpuUsPerReadAtBase,
        double StoreCpuUsPerReadAtN,
        double StoreCpuUsPerWriteAtBaseBefore,
        double StoreCpuUsPerWriteAtBaseAfter,
        double StoreCpuUsPerWriteAtBase,
        double StoreCpuUsPerWriteAtN,
        double StoreRoundTripsPerReadAtN,
        double StoreRoundTripsPerWriteAtN,
        long RequestsMeasured,
        long Errors,
        bool TargetMet)
    {
        public static ScaleResult Create(string contender, BenchOptions options, int reached, double loadSeconds, double baseMemory, double scaleMemory, Phase before, Phase atN, Phase after)
        {
            var readBase = (before.Read.P50Ms + after.Read.P50Ms) / 2;
            var writeBase = (before.Write.P50Ms + after.Write.P50Ms) / 2;
            var readRatio = Math.Round(atN.Read.P50Ms / readBase, 3);
            var writeRatio = Math.Round(atN.Write.P50Ms / writeBase, 3);
            Phase[] phases = [before, atN, after];
            return new ScaleResult(
                contender,
                options.ScaleSessions,
                reached,
                options.ScaleBaseSessions,
                Math.Round(loadSeconds, 1),
                Math.Round((reached - options.ScaleBaseSessions) / Math.Max(loadSeconds, 1e-9), 0),
                Math.Round(baseMemory, 0),
                Math.Round(scaleMemory, 0),
                Math.Round(scaleMemory / baseMemory, 3),
                before.Read.P50Ms,
                after.Read.P50Ms,
                Math.Round(readBase, 4),
                atN.Read.P50Ms,
                readRatio,
                before.Write.P50Ms,
                after.Write.P50Ms,
                Math.Round(writeBase, 4),
                atN.Write.P50Ms,
                writeRatio,
                before.Read.StoreCpuUsPerRequest,
                after.Read.StoreCpuUsPerRequest,
                Math.Round((before.Read.StoreCpuUsPerRequest + after.Read.StoreCpuUsPerRequest) / 2, 2),
                atN.Read.StoreCpuUsPerRequest,
                before.Write.StoreCpuUsPerRequest,
                after.Write.StoreCpuUsPerRequest,
                Math.Round((before.Write.StoreCpuUsPerRequest + after.Write.StoreCpuUsPerRequest) / 2, 2),
                atN.Write.StoreCpuUsPerRequest,
                atN.Read.StoreRoundTripsPerRequest,
                atN.Write.StoreRoundTripsPerRequest,
                phases.Sum(p => p.Read.Requests + p.Write.Requests),
                phases.Sum(p => p.Read.Errors + p.Write.Errors),
                reached == options.ScaleSessions && readRatio <= 1.2 && writeRatio <= 1.2);
        }
    }
}
