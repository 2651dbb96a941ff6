using ClusterSession.AspNetCore;
using ClusterSession.Postgres;
using Npgsql;

namespace ClusterDemo;

/// <summary>The store chosen on the command line, ready for every node to connect to.</summary>
internal sealed class DemoSessionStore
{
    /// <summary>Keeps the demo's Redis keys apart from anything else in a shared Redis.</summary>
    private const string RedisKeyPrefix = "clusterdemo:";

    /// <summary>Keeps the demo's tables apart from anything else in a shared database.</summary>
    private const string PostgresTablePrefix = "clusterdemo_";

    /// <summary>How the startup line says that the nodes use the near cache.</summary>
    private const string NearCacheOn = "; near cache on in every node";

    private readonly Action<ClusterSessionOptions> _configure;

    private DemoSessionStore(string description, bool keepsKeyRing, Action<ClusterSessionOptions> configure)
    {
        Description = description;
        KeepsKeyRing = keepsKeyRing;
        _configure = configure;
    }

    /// <summary>A one-line description of the store, printed at startup; never contains a password.</summary>
    public string Description { get; }

    /// <summary>
    /// Whether the store also keeps the Data Protection key ring (a shared store: Garnet, Redis, PostgreSQL),
    /// which ClusterSession then uses for the nodes' cookies. The in-memory store keeps none.
    /// </summary>
    public bool KeepsKeyRing { get; }

    /// <summary>
    /// Prepares the store of <paramref name="arguments"/>: starts the embedded Garnet (returned for the
    /// caller to stop) or creates the PostgreSQL tables.
    /// </summary>
    public static async Task<(DemoSessionStore Store, EmbeddedGarnet? Garnet)> CreateAsync(DemoArguments arguments, CancellationToken cancellationToken)
    {
        var near = arguments.NearCache ? NearCacheOn : string.Empty;
        switch (arguments.Store)
        {
            case DemoStore.Garnet:
                var garnet = EmbeddedGarnet.Start();
                return (Redis($"garnet (embedded Microsoft Garnet on {garnet.EndPoint}{near})", garnet.Configuration, waitReplicas: 0, arguments.NearCache), garnet);
            case DemoStore.Redis:
                var waits = arguments.WaitReplicas > 0 ? $"; saves wait for {arguments.WaitReplicas} replica(s)" : string.Empty;
                return (Redis($"redis ({arguments.RedisConfiguration}{waits}{near})", arguments.RedisConfiguration!, arguments.WaitReplicas, arguments.NearCache), null);
            case DemoStore.Postgres:
                return (await PostgresAsync(arguments.PostgresConnectionString!, arguments.NearCache, cancellationToken).ConfigureAwait(false), null);
            default:
                return (new DemoSessionStore("memory (in-process, this node only)", keepsKeyRing: false, options => options.UseInMemory()), null);
        }
    }

    /// <summary>Points one node's session options at this store; every node gets its own connection, as separate servers would.</summary>
    public void Configure(ClusterSessionOptions options) => _configure(options);

    private static DemoSessionStore Redis(string description, string configuration, int waitReplicas, bool nearCache)
        => new(description, keepsKeyRing: true, options => options.UseRedis(redis =>
        {
            redis.Configuration = configuration;
            redis.KeyPrefix = RedisKeyPrefix;
            redis.WaitForReplicas = waitReplicas;
            redis.NearCache.Enabled = nearCache;
        }));

    private static async Task<DemoSessionStore> PostgresAsync(string connectionString, bool nearCache, CancellationToken cancellationToken)
    {
        // The library never creates tables behind an application's back; creating them here, once,
        // before any node starts, is this demo's own choice (an application would run schema.sql).
        var schemaOptions = new PostgresSessionStoreOptions { ConnectionString = connectionString, TablePrefix = PostgresTablePrefix };
        await using (var schemaStore = new PostgresSessionStore(schemaOptions))
        {
            await schemaStore.CreateSchemaAsync(cancellationToken).ConfigureAwait(false);
        }

        var server = new NpgsqlConnectionStringBuilder(connectionString);
        var description = $"postgres ({server.Host}:{server.Port}, database {server.Database ?? server.Username}; " +
            $"tables {schemaOptions.Schema}.{PostgresTablePrefix}sessions, {schemaOptions.Schema}.{PostgresTablePrefix}attributes " +
            $"and {schemaOptions.Schema}.{PostgresTablePrefix}key_ring " +
            "created by the demo at startup if missing" + (nearCache ? NearCacheOn : string.Empty) + ")";
        return new DemoSessionStore(description, keepsKeyRing: true, options => options.UsePostgres(postgres =>
        {
            postgres.ConnectionString = connectionString;
            postgres.TablePrefix = PostgresTablePrefix;
            postgres.NearCache.Enabled = nearCache;
        }));
    }
}
