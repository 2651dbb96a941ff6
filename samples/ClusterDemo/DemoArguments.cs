using System.Globalization;

namespace ClusterDemo;

/// <summary>Where the demo keeps its sessions.</summary>
internal enum DemoStore
{
    /// <summary>Microsoft Garnet started inside this process on a free loopback port.</summary>
    Garnet,

    /// <summary>An external Redis or Redis Cluster named by <c>--redis</c>.</summary>
    Redis,

    /// <summary>The process-local in-memory store; only one node can share it.</summary>
    Memory,

    /// <summary>An external PostgreSQL named by <c>--postgres</c>.</summary>
    Postgres,
}

/// <summary>The parsed command line of the demo.</summary>
internal sealed record DemoArguments
{
    public const int DefaultPort = 5000;
    public const int DefaultNodes = 3;
    public const int DefaultIdleTimeoutSeconds = 1800;
    public const int MaxNodes = 16;
    public const int MaxWaitReplicas = 16;

    public const string Usage = """
        Usage: dotnet run --project samples/ClusterDemo -- [options]

        Starts a session store, N app nodes and a round-robin load balancer, all on 127.0.0.1.

        Options:
          --store garnet|redis|postgres|memory
                                       where sessions live (default garnet: embedded, nothing to install;
                                       memory works only with --nodes 1)
          --redis <configuration>      StackExchange.Redis configuration of an external Redis or
                                       Redis Cluster, e.g. 127.0.0.1:6379 (implies --store redis)
          --postgres <connection string>
                                       Npgsql connection string of an external PostgreSQL, e.g.
                                       "Host=127.0.0.1;Username=postgres;Database=postgres"
                                       (implies --store postgres; the demo creates its tables
                                       clusterdemo_sessions, clusterdemo_attributes and
                                       clusterdemo_key_ring if missing)
          --nodes N                    number of app nodes, 1..16 (default 3)
          --port P                     load balancer on 127.0.0.1:P, node k on 127.0.0.1:P+k (default 5000)
          --idle-timeout S             session idle timeout in seconds (default 1800)
          --wait-replicas N            every write waits until N replicas have it (Redis WAIT), 0..16
                                       (default 0; needs --redis with replicas: a write that fewer
                                       replicas acknowledge in time fails with 503)
          --max-sessions-per-user N    at most N sessions per signed-in user, 1..1000; a sign-in beyond
                                       that ends the user's oldest session (default: no cap)
          --near-cache                 each node keeps the sessions it read in its own memory and reads
                                       them again with no store round trip; every change tells the other
                                       nodes through the store (not with --store memory)
          --https                      the load balancer serves https://127.0.0.1:P with a self-signed
                                       certificate made at start-up (its SHA-256 fingerprint is printed;
                                       browsers warn about it), and the nodes name their cookies
                                       __Host-ClusterSession and __Host-ClusterDemo.Auth, always Secure;
                                       the nodes stay on http, behind it
          --help                       show this text
        """;

    public DemoStore Store { get; init; } = DemoStore.Garnet;

    public string? RedisConfiguration { get; init; }

    public string? PostgresConnectionString { get; init; }

    public int Nodes { get; init; } = DefaultNodes;

    public int Port { get; init; } = DefaultPort;

    public int IdleTimeoutSeconds { get; init; } = DefaultIdleTimeoutSeconds;

    /// <summary>RedisSessionStoreOptions.WaitForReplicas for the external Redis; 0 waits for none.</summary>
    public int WaitReplicas { get; init; }

    /// <summary>The per-user session cap, or null for none.</summary>
    public int? MaxSessionsPerUser { get; init; }

    /// <summary>Whether the nodes turn on the store's near cache (NearCacheOptions.Enabled); not with the in-memory store.</summary>
    public bool NearCache { get; init; }

    /// <summary>Whether the load balancer serves HTTPS and the nodes set <c>__Host-</c> cookies, always Secure.</summary>
    public bool Https { get; init; }

    public bool ShowHelp { get; init; }

    /// <summary>The URL of node <paramref name="k"/> (1-based).</summary>
    public string NodeUrl(int k) => "http://127.0.0.1:" + (Port + k).ToString(CultureInfo.InvariantCulture);

    /// <summary>The URL of the load balancer.</summary>
    public string LoadBalancerUrl => (Https ? "https" : "http") + "://127.0.0.1:" + Port.ToString(CultureInfo.InvariantCulture);

    /// <summary>Parses <paramref name="args"/>; on failure returns null and a message that says what to fix.</summary>
    public static DemoArguments? Parse(IReadOnlyList<string> args, out string? error)
    {
        var result = new DemoArguments();
        string? store = null;
        error = null;
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            if (name is "--help" or "-h" or "-?")
            {
                return result with { ShowHelp = true };
            }

            // A flag: it takes no value.
            if (name == "--near-cache")
            {
                result = result with { NearCache = true };
                continue;
            }

            if (name == "--https")
            {
                result = result with { Https = true };
                continue;
            }

            // Both "--port 5000" and "--port=5000" work.
            string? value = null;
            var equals = name.IndexOf('=', StringComparison.Ordinal);
            if (name.StartsWith("--", StringComparison.Ordinal) && equals > 0)
            {
                value = name[(equals + 1)..];
                name = name[..equals];
            }
            else if (i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                value = args[++i];
            }

            switch (name)
            {
                case "--store":
                    store = value;
                    break;
                case "--redis":
                    if (string.IsNullOrWhiteSpace(value))
                    {
                        error = "--redis needs a configuration, e.g. --redis 127.0.0.1:6379.";
                        return null;
                    }

                    result = result with { RedisConfiguration = value };
                    break;
                case "--postgres":
                    if (string.IsNullOrWhiteSpace(value))
                    {
                        error = "--postgres needs a connection string, e.g. --postgres \"Host=127.0.0.1;Username=postgres;Database=postgres\".";
                        return null;
                    }

                    result = result with { PostgresConnectionString = value };
                    break;
                case "--nodes":
                    if (!TryParseInt(name, value, 1, MaxNodes, out var nodes, out error))
                    {
                        return null;
                    }

                    result = result with { Nodes = nodes };
                    break;
                case "--port":
                    if (!TryParseInt(name, value, 1, 65535 - MaxNodes, out var port, out error))
                    {
                        return null;
                    }

                    result = result with { Port = port };
                    break;
                case "--idle-timeout":
                    if (!TryParseInt(name, value, 1, 30 * 24 * 3600, out var idle, out error))
                    {
                        return null;
                    }

                    result = result with { IdleTimeoutSeconds = idle };
                    break;
                case "--wait-replicas":
                    if (!TryParseInt(name, value, 0, MaxWaitReplicas, out var replicas, out error))
                    {
                        return null;
                    }

                    result = result with { WaitReplicas = replicas };
                    break;
                case "--max-sessions-per-user":
                    if (!TryParseInt(name, value, 1, 1000, out var cap, out error))
                    {
                        return null;
                    }

                    result = result with { MaxSessionsPerUser = cap };
                    break;
                case "--near-cache" or "--https":
                    error = $"{name} is a flag: give it without a value.";
                    return null;
                default:
                    error = $"Unknown option '{name}'.";
                    return null;
            }
        }

        return Validate(result, store, out error);
    }

    private static DemoArguments? Validate(DemoArguments result, string? store, out string? error)
    {
        error = null;
        switch (store)
        {
            case null when result.RedisConfiguration is not null && result.PostgresConnectionString is not null:
                error = "--redis and --postgres name two different stores: give one of them.";
                return null;
            case null:
                // An external server named without --store means that server.
                result = result with
                {
                    Store = result.RedisConfiguration is not null ? DemoStore.Redis
                        : result.PostgresConnectionString is not null ? DemoStore.Postgres
                        : DemoStore.Garnet,
                };
                break;
            case "garnet":
                result = result with { Store = DemoStore.Garnet };
                break;
            case "redis":
                result = result with { Store = DemoStore.Redis };
                break;
            case "postgres":
                result = result with { Store = DemoStore.Postgres };
                break;
            case "memory":
                result = result with { Store = DemoStore.Memory };
                break;
            default:
                error = $"--store must be garnet, redis, postgres or memory, not '{store}'.";
                return null;
        }

        error = ServerOptionError(result.Store, DemoStore.Redis, result.RedisConfiguration, "redis", "<configuration>", "127.0.0.1:6379", store)
            ?? ServerOptionError(result.Store, DemoStore.Postgres, result.PostgresConnectionString, "postgres", "<connection string>", "\"Host=127.0.0.1;Username=postgres;Database=postgres\"", store);
        if (error is not null)
        {
            return null;
        }

        if (result.WaitReplicas > 0 && result.Store != DemoStore.Redis)
        {
            error = $"--wait-replicas waits for the replicas of an external Redis, so it needs --redis <configuration> (got --store {result.Store.ToString().ToLowerInvariant()}).";
            return null;
        }

        if (result.NearCache && result.Store == DemoStore.Memory)
        {
            error = "--near-cache does not apply to --store memory: its sessions are in the node's memory already. Use it with --store garnet, redis or postgres.";
            return null;
        }

        if (result.Store == DemoStore.Memory && result.Nodes != 1)
        {
            error = $"--store memory keeps sessions inside one node, so it needs --nodes 1 (got --nodes {result.Nodes}); use --store garnet to share sessions between nodes.";
            return null;
        }

        return result;
    }

    /// <summary>An external server's option (<c>--redis</c>, <c>--postgres</c>) goes with its store and only with it.</summary>
    private static string? ServerOptionError(DemoStore chosen, DemoStore server, string? value, string name, string placeholder, string example, string? store)
    {
        if (chosen == server && value is null)
        {
            return $"--store {name} needs --{name} {placeholder}, e.g. --{name} {example}.";
        }

        return chosen != server && value is not null ? $"--{name} is only used with --store {name}, not --store {store}." : null;
    }

    private static bool TryParseInt(string name, string? value, int min, int max, out int parsed, out string? error)
    {
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out parsed) || parsed < min || parsed > max)
        {
            error = $"{name} must be a whole number from {min} to {max}, not '{value}'.";
            return false;
        }

        error = null;
        return true;
    }
}
