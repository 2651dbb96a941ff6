using ClusterSession.AspNetCore;
using ClusterSession.Redis;

namespace ClusterDemo;

/// <summary>The store chosen on the command line, ready for every node to connect to.</summary>
internal sealed class DemoSessionStore
{
    private DemoSessionStore(DemoStore kind, string description, string? redisConfiguration)
    {
        Kind = kind;
        Description = description;
        RedisConfiguration = redisConfiguration;
    }

    public DemoStore Kind { get; }

    public string Description { get; }

    /// <summary>The StackExchange.Redis configuration every node connects with (Garnet and Redis).</summary>
    public string? RedisConfiguration { get; }

    public static DemoSessionStore Create(DemoArguments arguments, out EmbeddedGarnet? garnet)
    {
        garnet = null;
        switch (arguments.Store)
        {
            case DemoStore.Garnet:
                garnet = EmbeddedGarnet.Start();
                return new DemoSessionStore(DemoStore.Garnet, $"garnet (embedded Microsoft Garnet on {garnet.EndPoint})", garnet.Configuration);
            case DemoStore.Redis:
                return new DemoSessionStore(DemoStore.Redis, $"redis ({arguments.RedisConfiguration})", arguments.RedisConfiguration);
            default:
                return new DemoSessionStore(DemoStore.Memory, "memory (in-process, this node only)", null);
        }
    }

    /// <summary>Points one node's session options at this store; every node gets its own connection, as separate servers would.</summary>
    public void Configure(ClusterSessionOptions options)
    {
        if (Kind == DemoStore.Memory)
        {
            options.UseInMemory();
        }
        else
        {
            // UseStore rather than UseRedis(...): the integration has no UseRedis yet.
            var configuration = RedisConfiguration!;
            options.UseStore(sp => new RedisSessionStore(
                new RedisSessionStoreOptions { Configuration = configuration, KeyPrefix = "clusterdemo:", Limits = options.Limits },
                sp.GetService<TimeProvider>(),
                sp.GetService<ILogger<RedisSessionStore>>()));
        }
    }
}
