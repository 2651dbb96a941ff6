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
/// over Redis, two identical redis-servers, each behind its own latency proxy with its own app: one holds the base count
/// of sessions of the benchmark's shape (10 attributes of 100 bytes), the other N. The sessions are written straight
/// into the store (the contender's key prefix, the store's own scripts, many calls in flight on one pipelined
/// connection, bounded by count and by time). Then read and write are measured at one connection on both, in
/// interleaved cells that take turns going first (as the main run does), so that the shared machine's drift favours
/// neither. Each request picks a random session out of a sample spread over all the sessions of its server, so the
/// keyspace's size is what the server walks. Memory per session is the growth of <c>used_memory</c> divided by the
/// sessions added.
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
            $"scale: {options.ScaleSessions:N0} sessions against {options.ScaleBaseSessions:N0}, two redis-servers, profile {options.Profile}: {options.Rounds} interleaved rounds x {options.CellDuration.TotalSeconds} s per cell, 1 connection, injected RTT {options.RttMs} ms, loads bounded to {options.ScaleFillLimit.TotalSeconds} s each"));
        await using var atBase = await Server.StartAsync(options, cancellationToken);
        await using var atScale = await Server.StartAsync(options, cancellationToken);

        var results = new List<ScaleResult>();
        foreach (var contender in contenders)
        {
            var servers = new[] { atBase, atScale };
            var loaders = new Loader[2];
            var memory = new double[2];
            var hosts = new ContenderHost[2];
            try
            {
                var loadSeconds = 0.0;
                for (var s = 0; s < 2; s++)
                {
                    var count = s == 0 ? options.ScaleBaseSessions : options.ScaleSessions;
                    await servers[s].Probe.FlushAllAsync();
                    hosts[s] = await ContenderHost.StartAsync(contender, servers[s].Stores, cancellationToken);
                    await using var store = servers[s].DirectStore(contender.RedisKeyPrefix!);
                    var empty = await UsedMemoryAsync(servers[s].Probe);
                    var load = Stopwatch.StartNew();
                    loaders[s] = new Loader(store, count);
                    await loaders[s].LoadAsync(options.ScaleFillLimit, cancellationToken);
                    loadSeconds = load.Elapsed.TotalSeconds;
                    memory[s] = (double)(await UsedMemoryAsync(servers[s].Probe) - empty) / loaders[s].Created;
                    await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                        $"{contender.Name}: {loaders[s].Created:N0} of {count:N0} sessions loaded in {loadSeconds:F0} s ({loaders[s].Created / loadSeconds:F0}/s; {total.Elapsed.TotalSeconds:F0} s)"));
                }

                var phases = await MeasureAsync(hosts, loaders, servers, options, cancellationToken);
                results.Add(ScaleResult.Create(contender.Name, options, loaders[1].Created, loadSeconds, memory[0], memory[1], phases[0], phases[1]));
            }
            finally
            {
                foreach (var host in hosts.Where(h => h is not null))
                {
                    await host.DisposeAsync();
                }
            }

            foreach (var server in servers)
            {
                await server.Probe.FlushAllAsync();
            }
        }

        await output.WriteLineAsync();
        await output.WriteLineAsync(Render(results));
        var errors = results.Sum(r => r.Errors);
        if (errors > 0)
        {
            await output.WriteLineAsync($"WARNING: {errors} requests failed or answered with an error status.");
        }

        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"done in {total.Elapsed.TotalSeconds:F0} s"));
        var info = await atBase.Probe.InfoAsync("server");
        return JsonSerializer.Serialize(new ScaleReport(options.RttMs, options.Profile, info.GetValueOrDefault("redis_version"), results), Json);
    }

    /// <summary>
    /// Read and write at one connection on both servers, in interleaved cells (the order alternates every round),
    /// each request on a random session of that server's sample.
    /// </summary>
    private static async Task<Phase[]> MeasureAsync(ContenderHost[] hosts, Loader[] loaders, Server[] servers, BenchOptions options, CancellationToken cancellationToken)
    {
        var generators = hosts.Select((host, s) => new LoadGenerator(host.BaseAddress, connections: 1, loaders[s].Sample.Select(id => ClusterSessionContender.CookieName + "=" + id).ToList())).ToArray();
        try
        {
            var cells = new Dictionary<(int Server, Scenario Scenario), CellSum>();
            foreach (var s in (int[])[0, 1])
            {
                foreach (var scenario in (Scenario[])[Scenario.Read, Scenario.Write])
                {
                    cells[(s, scenario)] = new CellSum();
                    await generators[s].RunAsync(scenario, options.WarmupDuration, options.CellMaxRequests, cancellationToken);
                }
            }

            for (var round = 0; round < options.Rounds; round++)
            {
                foreach (var scenario in (Scenario[])[Scenario.Read, Scenario.Write])
                {
                    foreach (var s in round % 2 == 0 ? (int[])[0, 1] : [1, 0])
                    {
                        var cpuBefore = await servers[s].Probe.CpuSecondsAsync();
                        var tripsBefore = servers[s].Proxy.CommandsToServer;
                        var sample = await generators[s].RunAsync(scenario, options.CellDuration, options.CellMaxRequests, cancellationToken);
                        cells[(s, scenario)].Add(sample, await servers[s].Probe.CpuSecondsAsync() - cpuBefore, servers[s].Proxy.CommandsToServer - tripsBefore);
                    }
                }
            }

            return [.. ((int[])[0, 1]).Select(s => new Phase(cells[(s, Scenario.Read)].Summary(), cells[(s, Scenario.Write)].Summary()))];
        }
        finally
        {
            foreach (var generator in generators)
            {
                generator.Dispose();
            }
        }
    }

    private static async Task<long> UsedMemoryAsync(RedisProbe probe)
        => long.Parse((await probe.InfoAsync("memory"))["used_memory"], CultureInfo.InvariantCulture);

    private static string Render(IReadOnlyList<ScaleResult> results)
    {
        var sb = new StringBuilder();
        sb.AppendLine("Scale (issue 15: p50 at N within 1.2x of p50 at the base count). Two redis-servers measured in interleaved cells;");
        sb.AppendLine("each request on a random session of a sample spread over all sessions of its server; 1 connection.");
        sb.AppendLine("| contender | sessions | bytes/session at base | at N | x | read p50 ms at base | at N | x | write p50 ms at base | at N | x | store CPU us/read at base | at N | x | store CPU us/write at base | at N | x |");
        sb.AppendLine("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        foreach (var r in results)
        {
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Contender} | {r.Sessions:N0} of {r.SessionsAsked:N0} vs {r.BaseSessions:N0} | {r.UsedMemoryBytesPerSessionAtBase:F0} | {r.UsedMemoryBytesPerSessionAtN:F0} | {r.UsedMemoryBytesPerSessionRatio:F2} " +
                $"| {r.ReadP50MsAtBase:F3} | {r.ReadP50MsAtN:F3} | {r.ReadP50Ratio:F2} " +
                $"| {r.WriteP50MsAtBase:F3} | {r.WriteP50MsAtN:F3} | {r.WriteP50Ratio:F2} " +
                $"| {r.StoreCpuUsPerReadAtBase:F1} | {r.StoreCpuUsPerReadAtN:F1} | {Ratio(r.StoreCpuUsPerReadAtN, r.StoreCpuUsPerReadAtBase)} " +
                $"| {r.StoreCpuUsPerWriteAtBase:F1} | {r.StoreCpuUsPerWriteAtN:F1} | {Ratio(r.StoreCpuUsPerWriteAtN, r.StoreCpuUsPerWriteAtBase)} |");
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
    private sealed class Loader(RedisSessionStore store, int sessions)
    {
        private readonly int _stride = Math.Max(1, sessions / SamplePool);
        private readonly List<string> _sample = [];
        private int _next = -1;
        private int _created;

        public int Created => Volatile.Read(ref _created);

        public IReadOnlyList<string> Sample => _sample;

        public async Task LoadAsync(TimeSpan limit, CancellationToken cancellationToken)
        {
            var deadline = Stopwatch.StartNew();
            var now = DateTimeOffset.UtcNow;
            await Task.WhenAll(Enumerable.Range(0, FillInFlight).Select(_ => Task.Run(
                async () =>
                {
                    int i;
                    while (deadline.Elapsed < limit && (i = Interlocked.Increment(ref _next)) < sessions)
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
                        if (i % _stride == 0)
                        {
                            lock (_sample)
                            {
                                _sample.Add(id);
                            }
                        }
                    }
                },
                cancellationToken)));
        }
    }

    /// <summary>A redis-server of the scale run with its probe and its latency proxy.</summary>
    private sealed class Server : IAsyncDisposable
    {
        private readonly RedisServerProcess _process;

        private Server(RedisServerProcess process, RedisProbe probe, LatencyProxy proxy)
        {
            _process = process;
            Probe = probe;
            Proxy = proxy;
            Stores = new StoreEndpoints(BenchHarness.RedisConfigurationFor(proxy.Port), PostgresConnectionString: null);
        }

        public RedisProbe Probe { get; }

        public LatencyProxy Proxy { get; }

        /// <summary>How the app reaches this server: through the proxy.</summary>
        public StoreEndpoints Stores { get; }

        public static async Task<Server> StartAsync(BenchOptions options, CancellationToken cancellationToken)
        {
            var process = await RedisServerProcess.StartAsync(cancellationToken);
            try
            {
                var probe = await RedisProbe.ConnectAsync(process.Port);
                return new Server(process, probe, new LatencyProxy(new IPEndPoint(IPAddress.Loopback, process.Port), options.RttMs));
            }
            catch
            {
                process.Dispose();
                throw;
            }
        }

        /// <summary>A store on a direct connection, not through the proxy: loading is set-up, not measured.</summary>
        public RedisSessionStore DirectStore(string keyPrefix) => new(new RedisSessionStoreOptions
        {
            Configuration = $"127.0.0.1:{_process.Port},abortConnect=false,syncTimeout=30000,asyncTimeout=30000",
            KeyPrefix = keyPrefix,
            OperationTimeout = TimeSpan.FromSeconds(30),
        });

        public async ValueTask DisposeAsync()
        {
            await Proxy.DisposeAsync();
            await Probe.DisposeAsync();
            _process.Dispose();
        }
    }

    /// <summary>What the interleaved cells of one server and scenario added up to.</summary>
    private sealed class CellSum
    {
        private readonly List<long> _latencies = [];
        private long _requests;
        private long _errors;
        private double _cpuSeconds;
        private long _trips;

        public void Add(LoadSample sample, double cpuSeconds, long trips)
        {
            _latencies.AddRange(sample.LatencyTicks);
            _requests += sample.Requests;
            _errors += sample.Errors;
            _cpuSeconds += cpuSeconds;
            _trips += trips;
        }

        public PhaseCell Summary()
        {
            var sorted = _latencies.ToArray();
            Array.Sort(sorted);
            var p50 = sorted.Length == 0 ? 0 : sorted[(sorted.Length - 1) / 2] * 1000.0 / Stopwatch.Frequency;
            var n = Math.Max(1, _requests);
            return new PhaseCell(Math.Round(p50, 4), Math.Round(_cpuSeconds * 1e6 / n, 2), Math.Round((double)_trips / n, 3), _requests, _errors);
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
        double ReadP50MsAtBase,
        double ReadP50MsAtN,
        double ReadP50Ratio,
        double WriteP50MsAtBase,
        double WriteP50MsAtN,
        double WriteP50Ratio,
        double StoreCpuUsPerReadAtBase,
        double StoreCpuUsPerReadAtN,
        double StoreCpuUsPerWriteAtBase,
        double StoreCpuUsPerWriteAtN,
        double StoreRoundTripsPerReadAtN,
        double StoreRoundTripsPerWriteAtN,
        long RequestsMeasured,
        long Errors,
        bool TargetMet)
    {
        public static ScaleResult Create(string contender, BenchOptions options, int reached, double loadSeconds, double baseMemory, double scaleMemory, Phase atBase, Phase atN)
        {
            var readRatio = Math.Round(atN.Read.P50Ms / atBase.Read.P50Ms, 3);
            var writeRatio = Math.Round(atN.Write.P50Ms / atBase.Write.P50Ms, 3);
            Phase[] phases = [atBase, atN];
            return new ScaleResult(
                contender,
                options.ScaleSessions,
                reached,
                options.ScaleBaseSessions,
                Math.Round(loadSeconds, 1),
                Math.Round(reached / Math.Max(loadSeconds, 1e-9), 0),
                Math.Round(baseMemory, 0),
                Math.Round(scaleMemory, 0),
                Math.Round(scaleMemory / baseMemory, 3),
                atBase.Read.P50Ms,
                atN.Read.P50Ms,
                readRatio,
                atBase.Write.P50Ms,
                atN.Write.P50Ms,
                writeRatio,
                atBase.Read.StoreCpuUsPerRequest,
                atN.Read.StoreCpuUsPerRequest,
                atBase.Write.StoreCpuUsPerRequest,
                atN.Write.StoreCpuUsPerRequest,
                atN.Read.StoreRoundTripsPerRequest,
                atN.Write.StoreRoundTripsPerRequest,
                phases.Sum(p => p.Read.Requests + p.Write.Requests),
                phases.Sum(p => p.Read.Errors + p.Write.Errors),
                reached == options.ScaleSessions && readRatio <= 1.2 && writeRatio <= 1.2);
        }
    }
}
