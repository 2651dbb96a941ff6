using System.Diagnostics;
using System.Globalization;
using System.Net;
using ClusterSession.Bench.Contenders;
using ClusterSession.Bench.Postgres;

namespace ClusterSession.Bench;

/// <summary>
/// Runs everything in one process: redis-server, the latency proxy, every contender on Kestrel,
/// then the interleaved measurements, and returns the report. Cleans up on every exit path.
/// </summary>
internal static class BenchHarness
{
    private static readonly Scenario[] Scenarios = [Scenario.Read, Scenario.Write, Scenario.Mixed, Scenario.SignedIn, Scenario.NoSession, Scenario.NoSessionCookie];

    /// <summary>The entry point of the program and of the smoke test. Returns the process exit code.</summary>
    public static async Task<int> MainAsync(string[] args, TextWriter output, CancellationToken cancellationToken)
    {
        BenchOptions options;
        try
        {
            options = BenchOptions.Parse(args);
        }
        catch (ArgumentException e)
        {
            await output.WriteLineAsync(e.Message);
            return 2;
        }

        if (options.Mode != "bench")
        {
            var facts = options.Mode switch
            {
                "expiry" => await ExpiryRun.RunAsync(options, output, cancellationToken),
                "memory" => await MemoryRun.RunAsync(options, output, cancellationToken),
                "scale" => await ScaleRun.RunAsync(options, output, cancellationToken),
                _ => await CrashRun.RunAsync(output, cancellationToken),
            };
            if (options.JsonPath is not null)
            {
                await File.WriteAllTextAsync(options.JsonPath, facts, cancellationToken);
                await output.WriteLineAsync($"JSON written to {options.JsonPath}");
            }

            return 0;
        }

        var report = await RunAsync(options, output, cancellationToken);
        if (options.JsonPath is not null)
        {
            var directory = Path.GetDirectoryName(Path.GetFullPath(options.JsonPath));
            if (directory is not null)
            {
                Directory.CreateDirectory(directory);
            }

            await File.WriteAllTextAsync(options.JsonPath, report.ToJson(), cancellationToken);
            await output.WriteLineAsync($"JSON written to {options.JsonPath}");
        }

        return 0;
    }

    public static async Task<BenchReport> RunAsync(BenchOptions options, TextWriter output, CancellationToken cancellationToken)
    {
        var contenders = ContenderCatalog.All
            .Where(c => options.Contenders is null || c.Name == ContenderCatalog.BaselineName || options.Contenders.Contains(c.Name))
            .ToList();
        var total = Stopwatch.StartNew();
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"profile {options.Profile}: {options.Rounds} rounds x {options.CellDuration.TotalSeconds} s per cell, connections {string.Join("/", options.ConnectionCounts)}, injected RTT {options.RttMs} ms, {Environment.ProcessorCount} CPUs"));

        using var redis = await RedisServerProcess.StartAsync(cancellationToken);
        await using var probe = await RedisProbe.ConnectAsync(redis.Port);
        await using var proxy = new LatencyProxy(new IPEndPoint(IPAddress.Loopback, redis.Port), options.RttMs);

        var pings = options.Profile == "tiny" ? 50 : 500;
        var directRtt = await RedisProbe.MedianPingMsAsync(redis.Port, pings, cancellationToken);
        var proxiedRtt = await RedisProbe.MedianPingMsAsync(proxy.Port, pings, cancellationToken);
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"Redis PING median RTT: direct {directRtt:F3} ms, through the proxy {proxiedRtt:F3} ms (injected {options.RttMs} ms, achieved {proxiedRtt - directRtt:F3} ms extra)"));

        var idleWindow = TimeSpan.FromSeconds(options.Profile == "tiny" ? 0.2 : 1);
        var idleBefore = await probe.CpuSecondsAsync();
        await Task.Delay(idleWindow, cancellationToken);
        var idleCpu = (await probe.CpuSecondsAsync() - idleBefore) / idleWindow.TotalSeconds;
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"Redis idle CPU (INFO cpu, no client working): {idleCpu * 1000:F2} ms per second, the floor under the store CPU figures"));

        var redisConfiguration = RedisConfigurationFor(proxy.Port);

        var usesPostgres = contenders.Any(c => c.PostgresTables.Count > 0);
        await using var postgres = usesPostgres ? await PostgresServerProcess.StartAsync(cancellationToken) : null;
        await using var postgresProbe = postgres is null ? null : new PostgresProbe(postgres.ConnectionString);
        await using var postgresProxy = postgres is null
            ? null
            : new LatencyProxy(new IPEndPoint(IPAddress.Loopback, postgres.Port), options.RttMs, static () => new PostgresRoundTripCounter());
        if (postgres is not null)
        {
            await output.WriteLineAsync("PostgreSQL: initdb + pg_ctl on 127.0.0.1, fsync=on, synchronous_commit=on, full_page_writes=on (durable defaults), behind the same latency proxy");
        }

        var storeCpu = new StoreCpuMeter(probe, postgres);
        var stores = new StoreEndpoints(
            redisConfiguration,
            postgresProxy is null ? null : PostgresServerProcess.ConnectionStringFor(postgresProxy.Port));
        var hosts = new List<ContenderHost>();
        var generators = new Dictionary<(string Contender, int Connections, bool SignedIn), LoadGenerator>();
        LoadGenerator GeneratorFor(IContender contender, Scenario scenario, int connections) => generators[(contender.Name, connections, scenario == Scenario.SignedIn)];
        try
        {
            foreach (var contender in contenders)
            {
                hosts.Add(await ContenderHost.StartAsync(contender, stores, cancellationToken));
            }

            // What one session takes in the store, per seed shape: the 10 x 100-byte session and the signed-in one.
            var sessionBytes = new Dictionary<(string Contender, bool SignedIn), long?>();
            foreach (var host in hosts)
            {
                foreach (var signedIn in (bool[])[false, true])
                {
                    var seedPath = signedIn ? SignedInSeedPath : SeedPath;
                    sessionBytes[(host.Contender.Name, signedIn)] = host.Contender.PostgresTables.Count > 0
                        ? await MeasurePostgresSessionBytesAsync(host, postgresProbe!, options.Profile == "tiny" ? 40 : 200, seedPath, cancellationToken)
                        : await MeasureSessionBytesAsync(host, probe, seedPath, cancellationToken);
                    var maxConnections = options.ConnectionCounts.Max();
                    using var seeder = LoadGenerator.CreateClient(host.BaseAddress, 4);
                    var cookies = new List<string>();
                    for (var i = 0; i < maxConnections; i++)
                    {
                        cookies.Add(await LoadGenerator.SeedAsync(seeder, cancellationToken, seedPath));
                    }

                    foreach (var connections in options.ConnectionCounts)
                    {
                        generators[(host.Contender.Name, connections, signedIn)] = new LoadGenerator(host.BaseAddress, cookies.Take(connections).ToList());
                    }
                }
            }

            await output.WriteLineAsync("warming up");
            foreach (var host in hosts)
            {
                foreach (var scenario in Scenarios)
                {
                    foreach (var connections in options.ConnectionCounts)
                    {
                        await GeneratorFor(host.Contender, scenario, connections).RunAsync(scenario, options.WarmupDuration, options.CellMaxRequests, cancellationToken);
                    }
                }
            }

            var cells = new Dictionary<(string Contender, Scenario Scenario, int Connections), CellTotals>();
            for (var round = 0; round < options.Rounds; round++)
            {
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"round {round + 1}/{options.Rounds} ({total.Elapsed.TotalSeconds:F0} s)"));
                foreach (var scenario in Scenarios)
                {
                    foreach (var connections in options.ConnectionCounts)
                    {
                        // Rotate who goes first so that drift and warm caches favour nobody.
                        for (var k = 0; k < hosts.Count; k++)
                        {
                            var host = hosts[(k + round) % hosts.Count];
                            var key = (host.Contender.Name, scenario, connections);
                            if (!cells.TryGetValue(key, out var totals))
                            {
                                cells[key] = totals = new CellTotals();
                            }

                            await MeasureCellAsync(GeneratorFor(host.Contender, scenario, connections), host.Contender, scenario, options, probe, storeCpu, host.Contender.PostgresTables.Count > 0 ? postgresProxy! : proxy, postgresProbe, totals, cancellationToken);
                        }
                    }
                }
            }

            await output.WriteLineAsync("first requests on a node that has not seen the session");
            foreach (var host in hosts)
            {
                var totals = cells[(host.Contender.Name, Scenario.NoSessionCookieFirst, 1)] = new CellTotals();
                await MeasureFirstRequestsOnNodeAsync(host, stores, options.Profile == "tiny" ? 20 : FirstRequestSessions, probe, storeCpu, host.Contender.PostgresTables.Count > 0 ? postgresProxy! : proxy, postgresProbe, totals, cancellationToken);
            }

            var lostUpdates = new Dictionary<string, int>();
            foreach (var host in hosts)
            {
                lostUpdates[host.Contender.Name] = await MeasureLostUpdatesAsync(host, options.LostUpdateWrites, cancellationToken);
            }

            // Stopping the apps closes their connections, and a backend flushes its table statistics as it exits.
            var measured = hosts.Select(h => h.Contender).ToList();
            foreach (var host in hosts)
            {
                await host.DisposeAsync();
            }

            hosts.Clear();
            var afterWrites = new Dictionary<string, (long DeadTuples, long TableBytes)>();
            if (postgresProbe is not null)
            {
                await WaitForNoClientsAsync(postgresProbe, cancellationToken);
                foreach (var contender in measured.Where(c => c.PostgresTables.Count > 0))
                {
                    afterWrites[contender.Name] = (
                        await postgresProbe.DeadTuplesAsync(contender.PostgresTables, cancellationToken),
                        await postgresProbe.TotalBytesAsync(contender.PostgresTables, cancellationToken));
                }
            }

            var results = new List<BenchResult>();
            foreach (var contender in measured)
            {
                foreach (var scenario in (Scenario[])[.. Scenarios, Scenario.NoSessionCookieFirst])
                {
                    foreach (var connections in options.ConnectionCounts)
                    {
                        if (!cells.TryGetValue((contender.Name, scenario, connections), out var totals))
                        {
                            continue; // nosession-cookie-first runs at 1 connection only
                        }

                        (long, long)? pg = afterWrites.TryGetValue(contender.Name, out var a) ? a : null;
                        results.Add(totals.ToResult(contender, scenario, connections, sessionBytes[(contender.Name, scenario == Scenario.SignedIn)], lostUpdates[contender.Name], pg));
                    }
                }
            }

            await output.WriteLineAsync();
            await output.WriteLineAsync(ReportTable.Render(results, ContenderCatalog.BaselineName));
            await output.WriteLineAsync(ReportTable.RenderStoreTargets(results, ContenderCatalog.BaselineName));
            var nearCache = ReportTable.RenderNearCacheTargets(results, ClusterSessionContender.Memory.Name);
            if (nearCache.Length > 0)
            {
                await output.WriteLineAsync(nearCache);
            }

            await output.WriteLineAsync("Server-side command executions per request (INFO commandstats, direct connection; commands inside scripts count too),");
            await output.WriteLineAsync("and the execution time per request of the commands the app sent (scripts whole, so commands inside them are not counted twice; no socket I/O):");
            foreach (var ((contender, scenario, connections), totals) in cells.OrderBy(c => c.Key.Contender, StringComparer.Ordinal))
            {
                if (totals.CommandStats.Count > 0 && totals.Requests > 0)
                {
                    var breakdown = string.Join(", ", totals.CommandStats.OrderByDescending(c => c.Value.Calls).Select(c =>
                        string.Create(CultureInfo.InvariantCulture, $"{c.Key} {(double)c.Value.Calls / totals.Requests:F2}")));
                    await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                        $"  {contender} {ScenarioName(scenario)} {connections}: {(double)TopLevelUsec(totals.CommandStats) / totals.Requests:F1} us; {breakdown}"));
                }
            }

            var errors = cells.Sum(c => c.Value.Errors);
            if (errors > 0)
            {
                await output.WriteLineAsync($"WARNING: {errors} requests failed or answered with an error status.");
            }

            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"done in {total.Elapsed.TotalSeconds:F0} s"));
            return new BenchReport(options.RttMs, results);
        }
        finally
        {
            foreach (var generator in generators.Values)
            {
                generator.Dispose();
            }

            foreach (var host in hosts)
            {
                await host.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// Execution microseconds of the commands the app itself sent, each counted once: scripts whole (their time includes
    /// the commands they call, which commandstats also lists under their own names), plus the plain commands. When
    /// scripts ran, a command a script may call (<see cref="ScriptCalls"/>) is taken as called by it and left out;
    /// ClusterSession sends HGETALL plainly beside its scripts, and the built-in sends no script at all.
    /// </summary>
    internal static long TopLevelUsec(IReadOnlyDictionary<string, CommandStat> stats)
    {
        static bool IsScript(string name) => name.StartsWith("eval", StringComparison.OrdinalIgnoreCase) || name.StartsWith("fcall", StringComparison.OrdinalIgnoreCase);
        var scriptsRan = stats.Keys.Any(IsScript);
        return stats.Where(s => !scriptsRan || IsScript(s.Key) || !ScriptCalls.Contains(s.Key)).Sum(s => s.Value.Usec);
    }

    /// <summary>The commands ClusterSession's scripts call (src/ClusterSession.Redis/RedisScripts.cs).</summary>
    private static readonly HashSet<string> ScriptCalls = new(StringComparer.OrdinalIgnoreCase)
    {
        "time", "hmget", "hset", "hdel", "hlen", "hexists", "pexpire", "publish", "del", "exists", "rename",
        "zadd", "zrem", "zremrangebyscore", "zrange", "zscore", "zcard", "zpopmin",
    };

    public static string ScenarioName(Scenario scenario) => scenario switch
    {
        Scenario.Read => "read",
        Scenario.Write => "write",
        Scenario.Mixed => "mixed",
        Scenario.SignedIn => "signedin",
        Scenario.NoSessionCookie => "nosession-cookie",
        Scenario.NoSessionCookieFirst => "nosession-cookie-first",
        _ => "nosession",
    };

    private static async Task MeasureCellAsync(
        LoadGenerator generator,
        IContender contender,
        Scenario scenario,
        BenchOptions options,
        RedisProbe probe,
        StoreCpuMeter storeCpu,
        LatencyProxy proxy,
        PostgresProbe? postgresProbe,
        CellTotals totals,
        CancellationToken cancellationToken)
    {
        var statsBefore = contender.UsesRedis ? await probe.CommandStatsAsync() : null;
        var walProbe = contender.PostgresTables.Count > 0 ? postgresProbe : null;
        var walBefore = walProbe is null ? 0 : await walProbe.WalPositionAsync(cancellationToken);
        var bytesBefore = proxy.BytesToServer;
        var commandsBefore = proxy.CommandsToServer;
        var statementsBefore = walProbe is null ? null : await walProbe.StatementMsAsync(cancellationToken);
        var cpuBefore = await storeCpu.SecondsAsync(contender);
        var sample = await generator.RunAsync(scenario, options.CellDuration, options.CellMaxRequests, cancellationToken);
        var cpu = StoreCpuMeter.Delta(cpuBefore, await storeCpu.SecondsAsync(contender));
        totals.AddStatementMs(StoreCpuMeter.Delta(statementsBefore, walProbe is null ? null : await walProbe.StatementMsAsync(cancellationToken)));
        var bytes = proxy.BytesToServer - bytesBefore;
        var commands = proxy.CommandsToServer - commandsBefore;
        if (walProbe is not null)
        {
            totals.WalBytes += await walProbe.WalPositionAsync(cancellationToken) - walBefore;
        }

        if (statsBefore is not null)
        {
            foreach (var (name, stat) in RedisProbe.Delta(statsBefore, await probe.CommandStatsAsync()))
            {
                totals.CommandStats[name] = totals.CommandStats.GetValueOrDefault(name) + stat;
            }
        }

        totals.Add(sample, bytes, commands, cpu);
    }

    private const string SeedPath = "/seed";

    private const string SignedInSeedPath = "/seed-signedin";

    /// <summary>A StackExchange.Redis configuration for the apps, through the proxy at <paramref name="port"/>.</summary>
    internal static string RedisConfigurationFor(int port) => $"127.0.0.1:{port},abortConnect=false,connectTimeout=5000,syncTimeout=10000,asyncTimeout=10000";

    /// <summary>Sessions of the <c>nosession-cookie-first</c> measurement (each requested once).</summary>
    private const int FirstRequestSessions = 200;

    /// <summary>Extra sessions that warm up the second node's store connections before <c>nosession-cookie-first</c> is measured.</summary>
    private const int FirstRequestWarmSessions = 16;

    /// <summary>
    /// The <c>nosession-cookie</c> scenario when ClusterSession's touch is due, which the interleaved cells never see
    /// (their sessions were used by this node within a tenth of the idle timeout, so the per-node throttle holds every
    /// touch back): sessions seeded on the contender's node are each requested once, <c>GET /nosession</c> with the
    /// session cookie, sequentially, on a second node of the same contender that has not seen them yet, as when a load
    /// balancer sends a user to another server. The built-in keeps nothing per node (and a second node would need a shared
    /// Data Protection key ring to read its cookie), so it is measured on its own node. The store figures include what
    /// runs after the responses (ClusterSession's touches): the count is read once the store connection went quiet.
    /// </summary>
    private static async Task MeasureFirstRequestsOnNodeAsync(
        ContenderHost host,
        StoreEndpoints stores,
        int sessions,
        RedisProbe probe,
        StoreCpuMeter storeCpu,
        LatencyProxy proxy,
        PostgresProbe? postgresProbe,
        CellTotals totals,
        CancellationToken cancellationToken)
    {
        var contender = host.Contender;
        var cookies = new List<string>(sessions + FirstRequestWarmSessions);
        using (var seeder = LoadGenerator.CreateClient(host.BaseAddress, 1))
        {
            for (var i = 0; i < sessions + FirstRequestWarmSessions; i++)
            {
                cookies.Add(await LoadGenerator.SeedAsync(seeder, cancellationToken));
            }
        }

        await using var second = contender.Name == ContenderCatalog.BaselineName
            ? null
            : await ContenderHost.StartAsync(contender, stores, cancellationToken);
        var random = new Random(1);

        // Opens the node's store connections (a PostgreSQL pool opens one per concurrent call) and the HTTP connection
        // with the extra sessions, twice, outside the figures: what is measured is a touch, not a connection set-up.
        // A 404 is expected from the in-memory contender's second node, whose store is its own.
        using (var warmClient = LoadGenerator.CreateClient((second ?? host).BaseAddress, FirstRequestWarmSessions))
        {
            for (var pass = 0; pass < 2; pass++)
            {
                await Task.WhenAll(cookies.Skip(sessions).Select(async cookie =>
                {
                    using var warm = LoadGenerator.CreateRequest(Scenario.Read, cookie, random);
                    using var answer = await warmClient.SendAsync(warm, cancellationToken);
                    if (answer.StatusCode is not (HttpStatusCode.OK or HttpStatusCode.NotFound))
                    {
                        throw new InvalidOperationException($"{contender.Name}: warming up the second node answered {(int)answer.StatusCode}.");
                    }
                }));
            }
        }

        using var client = LoadGenerator.CreateClient((second ?? host).BaseAddress, 1);
        using (var warm = LoadGenerator.CreateRequest(Scenario.NoSession, null, random))
        using (var answer = await client.SendAsync(warm, cancellationToken))
        {
            answer.EnsureSuccessStatusCode();
        }

        await WaitForQuietAsync(proxy, cancellationToken);
        var statsBefore = contender.UsesRedis ? await probe.CommandStatsAsync() : null;
        var walProbe = contender.PostgresTables.Count > 0 ? postgresProbe : null;
        var walBefore = walProbe is null ? 0 : await walProbe.WalPositionAsync(cancellationToken);
        var bytesBefore = proxy.BytesToServer;
        var commandsBefore = proxy.CommandsToServer;
        var statementsBefore = walProbe is null ? null : await walProbe.StatementMsAsync(cancellationToken);
        var cpuBefore = await storeCpu.SecondsAsync(contender);
        var latencies = new List<long>(sessions);
        long errors = 0;
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < sessions; i++)
        {
            using var request = LoadGenerator.CreateRequest(Scenario.NoSessionCookieFirst, cookies[i], random);
            var sent = Stopwatch.GetTimestamp();
            using var response = await client.SendAsync(request, cancellationToken);
            await response.Content.CopyToAsync(Stream.Null, cancellationToken);
            latencies.Add(Stopwatch.GetTimestamp() - sent);
            if (!response.IsSuccessStatusCode)
            {
                errors++;
            }
        }

        var elapsed = Stopwatch.GetElapsedTime(start);
        await WaitForQuietAsync(proxy, cancellationToken);
        var cpu = StoreCpuMeter.Delta(cpuBefore, await storeCpu.SecondsAsync(contender));
        totals.AddStatementMs(StoreCpuMeter.Delta(statementsBefore, walProbe is null ? null : await walProbe.StatementMsAsync(cancellationToken)));
        if (walProbe is not null)
        {
            totals.WalBytes += await walProbe.WalPositionAsync(cancellationToken) - walBefore;
        }

        if (statsBefore is not null)
        {
            foreach (var (name, stat) in RedisProbe.Delta(statsBefore, await probe.CommandStatsAsync()))
            {
                totals.CommandStats[name] = totals.CommandStats.GetValueOrDefault(name) + stat;
            }
        }

        totals.Add(new LoadSample(latencies.Count, errors, elapsed, [.. latencies]), proxy.BytesToServer - bytesBefore, proxy.CommandsToServer - commandsBefore, cpu);
    }

    /// <summary>Waits until nothing was sent to the store for 300 ms (background touches done), at most 5 s.</summary>
    private static async Task WaitForQuietAsync(LatencyProxy proxy, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        var quiet = Stopwatch.StartNew();
        var last = proxy.BytesToServer;
        while (quiet.Elapsed < TimeSpan.FromMilliseconds(300) && deadline.Elapsed < TimeSpan.FromSeconds(5))
        {
            await Task.Delay(25, cancellationToken);
            var now = proxy.BytesToServer;
            if (now != last)
            {
                last = now;
                quiet.Restart();
            }
        }
    }

    /// <summary>
    /// MEMORY USAGE of what one /seed adds to Redis: the keys that appear, whatever the contender
    /// names them. Runs while nothing else touches Redis.
    /// </summary>
    private static async Task<long?> MeasureSessionBytesAsync(ContenderHost host, RedisProbe probe, string seedPath, CancellationToken cancellationToken)
    {
        if (!host.Contender.UsesRedis)
        {
            return null;
        }

        using var client = LoadGenerator.CreateClient(host.BaseAddress, 1);
        await LoadGenerator.SeedAsync(client, cancellationToken, seedPath); // connects the app to Redis first
        var before = await probe.KeysAsync();
        await LoadGenerator.SeedAsync(client, cancellationToken, seedPath);
        var added = (await probe.KeysAsync()).Except(before).ToList();
        if (added.Count == 0)
        {
            throw new InvalidOperationException($"{host.Contender.Name}: /seed added no key to Redis.");
        }

        long bytes = 0;
        foreach (var key in added)
        {
            bytes += await probe.MemoryUsageAsync(key);
        }

        return bytes;
    }

    /// <summary>
    /// What one /seed adds to PostgreSQL: the growth of pg_total_relation_size (heap, indexes, TOAST)
    /// of the contender's tables over <paramref name="sessions"/> seeds, divided by them, so that the
    /// 8 KB page granularity averages out. Runs on fresh tables while nothing else writes to them.
    /// </summary>
    private static async Task<long?> MeasurePostgresSessionBytesAsync(ContenderHost host, PostgresProbe probe, int sessions, string seedPath, CancellationToken cancellationToken)
    {
        using var client = LoadGenerator.CreateClient(host.BaseAddress, 1);
        await LoadGenerator.SeedAsync(client, cancellationToken, seedPath); // creates the schema and connects first
        var before = await probe.TotalBytesAsync(host.Contender.PostgresTables, cancellationToken);
        for (var i = 0; i < sessions; i++)
        {
            await LoadGenerator.SeedAsync(client, cancellationToken, seedPath);
        }

        var after = await probe.TotalBytesAsync(host.Contender.PostgresTables, cancellationToken);
        return (after - before) / sessions;
    }

    /// <summary>Waits (bounded) until only the probe is connected, so that every app backend has flushed its statistics.</summary>
    internal static async Task WaitForNoClientsAsync(PostgresProbe probe, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        const string sql = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()";
        while ((long)(await probe.ScalarAsync(sql, cancellationToken))! > 0 && deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(20, cancellationToken);
        }
    }

    /// <summary>Fires concurrent writes of distinct attributes at one session; returns how many did not land.</summary>
    private static async Task<int> MeasureLostUpdatesAsync(ContenderHost host, int writes, CancellationToken cancellationToken)
    {
        using var client = LoadGenerator.CreateClient(host.BaseAddress, 100);
        var cookie = await LoadGenerator.SeedAsync(client, cancellationToken);
        var random = new Random(1);
        var tasks = Enumerable.Range(0, writes).Select(async i =>
        {
            using var request = LoadGenerator.CreateRequest(Scenario.Write, cookie, random, Workload.LostUpdatePrefix + i.ToString(CultureInfo.InvariantCulture));
            using var response = await client.SendAsync(request, cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"{host.Contender.Name}: a concurrent write answered {(int)response.StatusCode} in the lost-update run.");
            }
        });
        await Task.WhenAll(tasks);
        using var count = new HttpRequestMessage(HttpMethod.Get, new Uri("/count", UriKind.Relative));
        count.Headers.TryAddWithoutValidation("Cookie", cookie);
        using var answer = await client.SendAsync(count, cancellationToken);
        answer.EnsureSuccessStatusCode();
        var present = int.Parse(await answer.Content.ReadAsStringAsync(cancellationToken), CultureInfo.InvariantCulture);
        return writes - present;
    }

    /// <summary>
    /// The store server's CPU: Redis's own <c>INFO cpu</c> (used_cpu_sys + used_cpu_user, every thread of the
    /// server: command execution, socket I/O, protocol parsing, its timers), PostgreSQL's from /proc (every process
    /// of the server). Null for the in-process store (its work is in the app's process) or when it cannot be read.
    /// </summary>
    private sealed class StoreCpuMeter(RedisProbe redis, PostgresServerProcess? postgres)
    {
        public async Task<double?> SecondsAsync(IContender contender)
        {
            if (contender.UsesRedis)
            {
                return await redis.CpuSecondsAsync();
            }

            return contender.PostgresTables.Count > 0 ? postgres?.CpuSeconds() : null;
        }

        public static double? Delta(double? before, double? after) => before is { } b && after is { } a ? a - b : null;
    }

    private sealed class CellTotals
    {
        private readonly List<long[]> _latencies = [];
        private TimeSpan _elapsed;
        private long _bytes;
        private long _commands;
        private double _storeCpuSeconds;
        private bool _storeCpuUnknown;
        private double _statementMs;
        private bool _statementMsUnknown;

        public long Requests { get; private set; }

        public long Errors { get; private set; }

        public Dictionary<string, CommandStat> CommandStats { get; } = new(StringComparer.OrdinalIgnoreCase);

        /// <summary>WAL written while the cell ran (PostgreSQL contenders; cluster-wide, and cells run one at a time).</summary>
        public long WalBytes { get; set; }

        /// <param name="sample">What the load measured.</param>
        /// <param name="bytes">Bytes the app sent to its store meanwhile.</param>
        /// <param name="commands">Store round trips meanwhile.</param>
        /// <param name="storeCpuSeconds">The store server's CPU meanwhile, or null when it has none or it could not be read.</param>
        public void Add(LoadSample sample, long bytes, long commands, double? storeCpuSeconds)
        {
            _storeCpuSeconds += storeCpuSeconds ?? 0;
            _storeCpuUnknown |= storeCpuSeconds is null;
            _latencies.Add(sample.LatencyTicks);
            _elapsed += sample.Elapsed;
            Requests += sample.Requests;
            Errors += sample.Errors;
            _bytes += bytes;
            _commands += commands;
        }

        /// <summary>PostgreSQL statement execution time while the cell ran (pg_stat_statements), or null when the server has none.</summary>
        public void AddStatementMs(double? milliseconds)
        {
            _statementMs += milliseconds ?? 0;
            _statementMsUnknown |= milliseconds is null;
        }

        public BenchResult ToResult(IContender contender, Scenario scenario, int connections, long? sessionBytes, int lostUpdates, (long DeadTuples, long TableBytes)? afterWrites)
        {
            var all = _latencies.SelectMany(l => l).ToArray();
            Array.Sort(all);
            var requests = Math.Max(1, Requests);
            var usesStore = contender.UsesRedis || contender.PostgresTables.Count > 0;
            var usesPostgres = contender.PostgresTables.Count > 0;
            double? walPerRequest = usesPostgres ? Math.Round((double)WalBytes / requests, 1) : null;

            // The in-process store makes no round trip at all: 0, not "does not apply" (the near cache's floor).
            double storeRoundTrips = usesStore ? Math.Round((double)_commands / requests, 3) : 0;
            return new BenchResult(
                contender.Name,
                ScenarioName(scenario),
                connections,
                Math.Round(Requests / Math.Max(_elapsed.TotalSeconds, 1e-9), 1),
                Math.Round(Percentile(all, 0.50), 4),
                Math.Round(Percentile(all, 0.99), 4),
                contender.UsesRedis ? Math.Round((double)_commands / requests, 3) : null,
                contender.UsesRedis ? Math.Round((double)_bytes / requests, 1) : null,
                contender.UsesRedis ? sessionBytes : null,
                lostUpdates,
                storeRoundTrips,
                usesStore ? Math.Round((double)_bytes / requests, 1) : null,
                usesStore ? sessionBytes : null,
                walPerRequest,
                scenario == Scenario.Write ? walPerRequest : null,
                afterWrites?.DeadTuples,
                afterWrites?.TableBytes,
                _storeCpuUnknown ? null : Math.Round(_storeCpuSeconds * 1e6 / requests, 2),
                contender.UsesRedis ? Math.Round((double)TopLevelUsec(CommandStats) / requests, 2)
                    : usesPostgres && !_statementMsUnknown ? Math.Round(_statementMs * 1000 / requests, 2) : null);
        }

        private static double Percentile(long[] sorted, double quantile)
        {
            if (sorted.Length == 0)
            {
                return 0;
            }

            var index = (int)Math.Ceiling(quantile * sorted.Length) - 1;
            return sorted[Math.Clamp(index, 0, sorted.Length - 1)] * 1000.0 / Stopwatch.Frequency;
        }
    }
}
