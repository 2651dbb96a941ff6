using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;

namespace ClusterSession.Bench;

/// <summary>
/// The harness's own direct connection to Redis (never through the proxy, so that measuring
/// adds neither latency nor counted bytes): command statistics, keys and memory.
/// </summary>
internal sealed class RedisProbe : IAsyncDisposable
{
    // What clients send to look after their connections or what this probe sends to measure;
    // none of it is session work.
    private static readonly HashSet<string> Housekeeping = new(StringComparer.OrdinalIgnoreCase)
    {
        "info", "ping", "echo", "client", "config", "cluster", "subscribe", "unsubscribe", "hello",
        "memory", "scan", "command", "select", "sentinel", "role", "auth", "dbsize", "type",
    };

    private readonly ConnectionMultiplexer _connection;
    private readonly IServer _server;

    private RedisProbe(ConnectionMultiplexer connection, int port)
    {
        _connection = connection;
        _server = connection.GetServer("127.0.0.1", port);
    }

    public static async Task<RedisProbe> ConnectAsync(int port)
    {
        var options = ConfigurationOptions.Parse($"127.0.0.1:{port}");
        options.AllowAdmin = true;
        options.ClientName = "bench-probe";
        // A synchronous FLUSHALL of a million sessions (the scale run) takes several seconds.
        options.SyncTimeout = 120_000;
        options.AsyncTimeout = 120_000;
        return new RedisProbe(await ConnectionMultiplexer.ConnectAsync(options), port);
    }

    /// <summary>Calls and microseconds of execution per command since the server started, session work only.</summary>
    public async Task<Dictionary<string, CommandStat>> CommandStatsAsync()
    {
        var raw = await _server.InfoRawAsync("commandstats") ?? string.Empty;
        var calls = new Dictionary<string, CommandStat>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in raw.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            // cmdstat_hmget:calls=12,usec=34,...
            if (!line.StartsWith("cmdstat_", StringComparison.Ordinal))
            {
                continue;
            }

            var colon = line.IndexOf(':', StringComparison.Ordinal);
            var name = line[8..colon];
            var baseName = name.Split('|')[0];
            if (Housekeeping.Contains(baseName))
            {
                continue;
            }

            var fields = line[(colon + 1)..].Split(',');
            long Field(string prefix) => long.Parse(fields.First(f => f.StartsWith(prefix, StringComparison.Ordinal))[prefix.Length..], CultureInfo.InvariantCulture);
            calls[name] = new CommandStat(Field("calls="), Field("usec="));
        }

        return calls;
    }

    public static Dictionary<string, CommandStat> Delta(Dictionary<string, CommandStat> before, Dictionary<string, CommandStat> after)
    {
        var delta = new Dictionary<string, CommandStat>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, stat) in after)
        {
            var d = stat - before.GetValueOrDefault(name);
            if (d.Calls != 0)
            {
                delta[name] = d;
            }
        }

        return delta;
    }

    public async Task<HashSet<string>> KeysAsync()
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var key in _server.KeysAsync(pattern: "*", pageSize: 1000))
        {
            keys.Add(key.ToString());
        }

        return keys;
    }

    /// <summary>MEMORY USAGE with every nested value counted.</summary>
    public async Task<long> MemoryUsageAsync(string key)
    {
        var result = await _connection.GetDatabase().ExecuteAsync("MEMORY", "USAGE", key, "SAMPLES", "0");
        return result.IsNull ? 0 : (long)result;
    }

    /// <summary>One INFO section as name/value pairs.</summary>
    public async Task<Dictionary<string, string>> InfoAsync(string section)
    {
        var groups = await _server.InfoAsync(section);
        return groups.SelectMany(g => g).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
    }

    /// <summary>Seconds of CPU the server has used, all its threads (INFO cpu: used_cpu_sys + used_cpu_user).</summary>
    public async Task<double> CpuSecondsAsync()
    {
        var cpu = await InfoAsync("cpu");
        return double.Parse(cpu["used_cpu_sys"], CultureInfo.InvariantCulture) + double.Parse(cpu["used_cpu_user"], CultureInfo.InvariantCulture);
    }

    public Task<long> DbSizeAsync() => _server.DatabaseSizeAsync();

    /// <summary>FLUSHALL (synchronous): an empty keyspace.</summary>
    public Task FlushAllAsync() => _server.FlushAllDatabasesAsync();

    /// <summary>CONFIG SET of one parameter.</summary>
    public Task ConfigSetAsync(string parameter, string value) => _server.ConfigSetAsync(parameter, value);

    /// <summary>SHUTDOWN NOSAVE: a clean stop that writes no snapshot (none is configured anyway).</summary>
    public async Task ShutdownAsync()
    {
        try
        {
            await _server.ExecuteAsync("SHUTDOWN", "NOSAVE");
        }
        catch (RedisConnectionException)
        {
            // The server closes the connection as it goes.
        }
    }

    public async ValueTask DisposeAsync() => await _connection.DisposeAsync();

    /// <summary>The median PING round trip over a raw connection to <paramref name="port"/>, in ms.</summary>
    public static async Task<double> MedianPingMsAsync(int port, int pings, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken);
        var ping = "*1\r\n$4\r\nPING\r\n"u8.ToArray();
        var buffer = new byte[64];
        var samples = new double[pings];
        for (var i = 0; i < pings; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await socket.SendAsync(ping, cancellationToken);
            var received = 0;
            while (received < 7)
            {
                var read = await socket.ReceiveAsync(buffer.AsMemory(received), cancellationToken);
                if (read == 0)
                {
                    throw new InvalidOperationException("Redis closed the connection during the PING loop.");
                }

                received += read;
            }

            samples[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        Array.Sort(samples);
        return samples[pings / 2];
    }
}

/// <summary>
/// One command's line of <c>INFO commandstats</c>: calls and microseconds spent executing them (a script's time
/// includes the commands it calls, which are also counted under their own names).
/// </summary>
internal readonly record struct CommandStat(long Calls, long Usec)
{
    public static CommandStat operator +(CommandStat a, CommandStat b) => new(a.Calls + b.Calls, a.Usec + b.Usec);

    public static CommandStat operator -(CommandStat a, CommandStat b) => new(a.Calls - b.Calls, a.Usec - b.Usec);
}
