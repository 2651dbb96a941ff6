using System.Globalization;

namespace ClusterSession.Bench;

/// <summary>Command line: <c>[--quick | --tiny] [--json PATH] [--rtt-ms X] [--contenders a,b]</c>, or <c>--expiry [--expiry-sessions N]</c>, or <c>--crash</c>, or <c>--memory [--memory-sessions N]</c>, or <c>--scale N [--scale-base M] [--scale-fill-seconds S]</c>.</summary>
internal sealed record BenchOptions
{
    public string Profile { get; init; } = "full";

    /// <summary><c>bench</c> (the side-by-side table), <c>expiry</c> (what expiry costs), <c>crash</c> (what survives a restart and a crash), <c>memory</c> (Redis memory per session) or <c>scale</c> (cost at N sessions against at the base count).</summary>
    public string Mode { get; init; } = "bench";

    /// <summary>How many sessions the expiry mode creates in each store.</summary>
    public int ExpirySessions { get; init; } = 100_000;

    /// <summary>How many sessions of each shape the memory mode writes.</summary>
    public int MemorySessions { get; init; } = 10_000;

    /// <summary>How many sessions the scale mode loads into Redis (<c>--scale N</c>).</summary>
    public int ScaleSessions { get; init; } = 1_000_000;

    /// <summary>The session count the scale mode compares against (<c>--scale-base M</c>).</summary>
    public int ScaleBaseSessions { get; init; } = 10_000;

    /// <summary>The most time the scale mode spends loading sessions, per load; it reports how many it reached.</summary>
    public TimeSpan ScaleFillLimit { get; init; } = TimeSpan.FromMinutes(5);

    public double RttMs { get; init; } = 0.5;

    public string? JsonPath { get; init; }

    /// <summary>Only these contenders (null: all). The baseline is always included.</summary>
    public IReadOnlyList<string>? Contenders { get; init; }

    /// <summary>Interleaved rounds; every cell is measured once per round.</summary>
    public int Rounds { get; init; } = 5;

    /// <summary>How long one cell runs per round.</summary>
    public TimeSpan CellDuration { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The most requests one cell sends per round.</summary>
    public long CellMaxRequests { get; init; } = 500_000;

    /// <summary>Untimed load per contender, scenario and connection count before the rounds.</summary>
    public TimeSpan WarmupDuration { get; init; } = TimeSpan.FromSeconds(1);

    public IReadOnlyList<int> ConnectionCounts { get; init; } = [1, 32];

    /// <summary>Concurrent writes of distinct attributes to one session in the lost-update test.</summary>
    public int LostUpdateWrites { get; init; } = 600;

    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        var options = new BenchOptions();
        for (var i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--quick":
                    options = options with
                    {
                        Profile = "quick",
                        Rounds = 3,
                        CellDuration = TimeSpan.FromSeconds(0.6),
                        WarmupDuration = TimeSpan.FromSeconds(0.3),
                    };
                    break;
                case "--tiny":
                    options = options with
                    {
                        Profile = "tiny",
                        Rounds = 1,
                        CellDuration = TimeSpan.FromSeconds(0.2),
                        CellMaxRequests = 64,
                        WarmupDuration = TimeSpan.FromSeconds(0.05),
                    };
                    break;
                case "--expiry":
                    options = options with { Mode = "expiry" };
                    break;
                case "--crash":
                    options = options with { Mode = "crash" };
                    break;
                case "--memory":
                    options = options with { Mode = "memory" };
                    break;
                case "--scale":
                    var scale = int.Parse(Value(args, ref i), NumberStyles.Integer, CultureInfo.InvariantCulture);
                    if (scale is < 100 or > MaxScaleSessions)
                    {
                        throw new ArgumentException($"--scale must be between 100 and {MaxScaleSessions:N0} sessions (about 2 KB of Redis memory each).");
                    }

                    options = options with { Mode = "scale", ScaleSessions = scale };
                    break;
                case "--scale-base":
                    var scaleBase = int.Parse(Value(args, ref i), NumberStyles.Integer, CultureInfo.InvariantCulture);
                    if (scaleBase < 10)
                    {
                        throw new ArgumentException("--scale-base must be at least 10 sessions.");
                    }

                    options = options with { ScaleBaseSessions = scaleBase };
                    break;
                case "--scale-fill-seconds":
                    var fillSeconds = double.Parse(Value(args, ref i), NumberStyles.Float, CultureInfo.InvariantCulture);
                    if (fillSeconds is < 1 or > 3600)
                    {
                        throw new ArgumentException("--scale-fill-seconds must be between 1 and 3600.");
                    }

                    options = options with { ScaleFillLimit = TimeSpan.FromSeconds(fillSeconds) };
                    break;
                case "--memory-sessions":
                    var memorySessions = int.Parse(Value(args, ref i), NumberStyles.Integer, CultureInfo.InvariantCulture);
                    if (memorySessions is < 10 or > 1_000_000)
                    {
                        throw new ArgumentException("--memory-sessions must be between 10 and 1,000,000.");
                    }

                    options = options with { MemorySessions = memorySessions };
                    break;
                case "--expiry-sessions":
                    var sessions = int.Parse(Value(args, ref i), NumberStyles.Integer, CultureInfo.InvariantCulture);
                    if (sessions is < 10 or > 1_000_000)
                    {
                        throw new ArgumentException("--expiry-sessions must be between 10 and 1,000,000.");
                    }

                    options = options with { ExpirySessions = sessions };
                    break;
                case "--json":
                    options = options with { JsonPath = Value(args, ref i) };
                    break;
                case "--rtt-ms":
                    var rtt = double.Parse(Value(args, ref i), NumberStyles.Float, CultureInfo.InvariantCulture);
                    if (rtt is < 0 or > 100)
                    {
                        throw new ArgumentException("--rtt-ms must be between 0 and 100 (milliseconds of round trip).");
                    }

                    options = options with { RttMs = rtt };
                    break;
                case "--contenders":
                    options = options with { Contenders = Value(args, ref i).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) };
                    break;
                case "--help" or "-h":
                    throw new ArgumentException(Usage);
                default:
                    throw new ArgumentException($"Unknown argument '{args[i]}'.\n{Usage}");
            }
        }

        if (options.Mode == "scale" && options.ScaleBaseSessions >= options.ScaleSessions)
        {
            throw new ArgumentException($"--scale-base ({options.ScaleBaseSessions}) must be below --scale ({options.ScaleSessions}).");
        }

        return options;
    }

    /// <summary>The most sessions <c>--scale</c> loads.</summary>
    public const int MaxScaleSessions = 2_000_000;

    public const string Usage =
        "usage: dotnet run -c Release --project bench/ClusterSession.Bench -- [--quick | --tiny] [--json PATH] [--rtt-ms X] [--contenders name,name]\n" +
        "       dotnet run -c Release --project bench/ClusterSession.Bench -- --expiry [--expiry-sessions N] [--rtt-ms X] [--json PATH]\n" +
        "       dotnet run -c Release --project bench/ClusterSession.Bench -- --crash [--json PATH]\n" +
        "       dotnet run -c Release --project bench/ClusterSession.Bench -- --memory [--memory-sessions N] [--json PATH]\n" +
        "       dotnet run -c Release --project bench/ClusterSession.Bench -- --scale N [--scale-base M] [--scale-fill-seconds S] [--quick | --tiny] [--rtt-ms X] [--contenders name,name] [--json PATH]";

    private static string Value(IReadOnlyList<string> args, ref int i)
    {
        if (i + 1 >= args.Count)
        {
            throw new ArgumentException($"{args[i]} needs a value.\n{Usage}");
        }

        return args[++i];
    }
}
