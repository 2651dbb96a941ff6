using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ClusterSession.Testing;
using ClusterSession.Testing.Servers;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;
using Xunit;

namespace ClusterSession.Redis.Tests;

/// <summary>The least-privilege rules of docs/operations.md, for a user whose keys start with <see cref="Prefix"/>.</summary>
internal static class SessionStoreAcl
{
    public const string Prefix = "acl:";
    public const string User = "sessions";
    public const string Password = "session-store-test-password";

    /// <summary>Exactly the rules docs/operations.md lists (with the key prefix <c>cs:</c> replaced by <see cref="Prefix"/>).</summary>
    public static readonly string Rules = string.Join(' ',
        "on", ">" + Password, "resetkeys", "~" + Prefix + "*", "resetchannels", "-@all",
        // Connection set-up by StackExchange.Redis.
        "+hello", "+auth", "+client|setname", "+select", "+ping", "+echo", "+info", "+role",
        // The store's own commands, and the ones its scripts run.
        "+eval", "+evalsha", "+hgetall", "+hmget", "+hset", "+hdel", "+hexists", "+hlen",
        "+exists", "+del", "+pexpire", "+zadd", "+zrem", "+zrange", "+zrangebyscore", "+zremrangebyscore", "+zscore", "+zcard", "+zpopmin", "+scan", "+time",
        // WaitForReplicas.
        "+wait");

    public const string NearCacheUser = "sessions-near";

    /// <summary>The rules above plus the near cache's, as docs/operations.md adds them (channels of every test prefix).</summary>
    public static readonly string NearCacheRules = Rules + " +publish +subscribe &" + Prefix + "*";
}

/// <summary>A redis-server with extra arguments; the plain port answers probes even when the store uses TLS.</summary>
public sealed class RedisProcess : IAsyncDisposable
{
    private readonly string _directory;
    private readonly Process _process;

    private RedisProcess(string directory, int port, Process process)
    {
        _directory = directory;
        Port = port;
        _process = process;
    }

    public int Port { get; }

    public static async Task<RedisProcess> StartAsync(params string[] extraArguments)
    {
        var directory = Path.Combine(Path.GetTempPath(), "cs-redis-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        var port = ServerProcess.FreePort();
        var process = ServerProcess.Start(
            RedisServerFixture.RedisServerPath,
            ["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory, .. extraArguments],
            directory);
        var server = new RedisProcess(directory, port, process);
        await ServerProcess.UntilAsync(
            async () => (await ServerProcess.TryCommandAsync(port, "PING"))?.StartsWith("+PONG", StringComparison.Ordinal) == true,
            TimeSpan.FromSeconds(20),
            $"redis-server answers on port {port}");
        return server;
    }

    public async Task CommandAsync(string command)
    {
        var reply = await ServerProcess.TryCommandAsync(Port, command);
        if (reply?.StartsWith("+OK", StringComparison.Ordinal) != true)
        {
            throw new InvalidOperationException($"redis-server refused '{command.Split(' ')[0]}': {reply}");
        }
    }

    public ValueTask DisposeAsync()
    {
        ServerProcess.Stop(_process);
        Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }
}

/// <summary>A redis-server with a user limited to <see cref="SessionStoreAcl.Rules"/> (the default user is left for set-up only).</summary>
public sealed class AclRedisFixture : IAsyncLifetime
{
    private RedisProcess? _server;

    public string Configuration { get; private set; } = string.Empty;

    public int Port => _server!.Port;

    public async Task InitializeAsync()
    {
        _server = await RedisProcess.StartAsync();
        await _server.CommandAsync($"ACL SETUSER {SessionStoreAcl.User} {SessionStoreAcl.Rules}");
        await _server.CommandAsync($"ACL SETUSER {SessionStoreAcl.NearCacheUser} {SessionStoreAcl.NearCacheRules}");
        Configuration = $"127.0.0.1:{Port},user={SessionStoreAcl.User},password={SessionStoreAcl.Password}";
        NearCacheConfiguration = $"127.0.0.1:{Port},user={SessionStoreAcl.NearCacheUser},password={SessionStoreAcl.Password}";
    }

    /// <summary>As <see cref="Configuration"/>, for a user that also has the near cache's rules.</summary>
    public string NearCacheConfiguration { get; private set; } = string.Empty;

    public async Task DisposeAsync() => await _server!.DisposeAsync();
}

/// <summary>A redis-server that accepts only TLS on <see cref="TlsPort"/>, with a throw-away self-signed certificate made here.</summary>
public sealed class TlsRedisFixture : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "cs-tls-" + Guid.NewGuid().ToString("N"));
    private RedisProcess? _server;

    public int TlsPort { get; private set; }

    public X509Certificate2 Certificate { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        Certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        var certificate = Path.Combine(_directory, "redis.crt");
        var privateKey = Path.Combine(_directory, "redis.key");
        await File.WriteAllTextAsync(certificate, Certificate.ExportCertificatePem());
        await File.WriteAllTextAsync(privateKey, key.ExportPkcs8PrivateKeyPem());
        TlsPort = ServerProcess.FreePort();
        _server = await RedisProcess.StartAsync(
            "--tls-port", TlsPort.ToString(CultureInfo.InvariantCulture),
            "--tls-cert-file", certificate, "--tls-key-file", privateKey, "--tls-ca-cert-file", certificate,
            "--tls-auth-clients", "no");
    }

    public async Task DisposeAsync()
    {
        await _server!.DisposeAsync();
        Certificate.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}

[CollectionDefinition(Name)]
public sealed class AclRedis : ICollectionFixture<AclRedisFixture>
{
    public const string Name = "redis with a least-privilege user";
}

[CollectionDefinition(Name)]
public sealed class TlsRedis : ICollectionFixture<TlsRedisFixture>
{
    public const string Name = "redis over tls";
}

/// <summary>The whole conformance suite as a Redis user limited to the documented ACL rules.</summary>
[Collection(AclRedis.Name)]
public sealed class LeastPrivilegeConformanceTests(AclRedisFixture redis) : SessionStoreConformanceTests
{
    protected override async Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time)
        => await TestStores.CreateAsync(redis.Configuration, time, prefix: SessionStoreAcl.Prefix + TestStores.UniquePrefix(), configure: o => o.Limits = Limits);

    protected override ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure)
        => TestStores.CreateWithOptions(redis.Configuration, o =>
        {
            ((RedisSessionStoreOptions)o).KeyPrefix = SessionStoreAcl.Prefix + TestStores.UniquePrefix();
            configure(o);
        });
}

/// <summary>The near cache as a Redis user limited to the documented rules: it serves, and keeps its record of nodes.</summary>
[Collection(AclRedis.Name)]
public sealed class LeastPrivilegeNearCacheTests(AclRedisFixture redis) : IAsyncDisposable
{
    private readonly List<IAsyncDisposable> _disposables = [];

    public async ValueTask DisposeAsync()
    {
        foreach (var disposable in _disposables)
        {
            await disposable.DisposeAsync();
        }
    }

    [Fact]
    public async Task The_near_cache_serves_and_records_its_node_with_the_documented_rules()
    {
        var prefix = SessionStoreAcl.Prefix + TestStores.UniquePrefix();
        var time = TestStores.NewClock();
        var store = await TestStores.CreateAsync(redis.NearCacheConfiguration, time, prefix, o => o.NearCache = new NearCacheOptions { Enabled = true });
        _disposables.Add(store);
        await NearStores.UntilUsableAsync(store, time);
        var session = SessionSnapshot.CreateNew(SessionId.Create(), time.GetUtcNow(), TimeSpan.FromMinutes(20), TimeSpan.FromHours(8), new Dictionary<string, byte[]> { ["n"] = [1] });
        Assert.True(await store.CreateAsync(session));
        Assert.NotNull(await store.LoadAsync(session.Id!));
        Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["n"] = [2] })));
        Assert.Equal([2], (await store.LoadAsync(session.Id!))!.Attributes["n"]);

        var admin = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{redis.Port}");
        _disposables.Add(admin);
        var database = admin.GetDatabase();
        Assert.Equal(1, await database.SortedSetLengthAsync(prefix + "ncn"));
        await ServerProcess.UntilAsync(async () => await database.KeyTimeToLiveAsync(prefix + "ncn") > TimeSpan.FromMinutes(59), TimeSpan.FromSeconds(10), "the record of nodes expires after an hour");
        Assert.Equal(0, store.NearCacheLayer!.UnacknowledgedEnds);
    }
}

/// <summary>The whole conformance suite over TLS, the server's certificate trusted as its own issuer.</summary>
[Collection(TlsRedis.Name)]
public sealed class TlsConformanceTests(TlsRedisFixture redis) : SessionStoreConformanceTests
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static ConnectionMultiplexer? _multiplexer;

    protected override async Task<ISessionStore> CreateStoreAsync(FakeTimeProvider time)
    {
        await Gate.WaitAsync();
        try
        {
            if (_multiplexer is null)
            {
                var configuration = ConfigurationOptions.Parse($"127.0.0.1:{redis.TlsPort},ssl=true,sslHost=localhost");
                configuration.TrustIssuer(redis.Certificate);
                _multiplexer = await ConnectionMultiplexer.ConnectAsync(configuration);
            }
        }
        finally
        {
            Gate.Release();
        }

        Assert.True(_multiplexer.IsConnected);
        return new RedisSessionStore(_multiplexer, new RedisSessionStoreOptions { KeyPrefix = TestStores.UniquePrefix(), Limits = Limits }, time);
    }

    protected override ISessionStore CreateStoreWithOptions(Action<SessionStoreOptions> configure)
    {
        var options = new RedisSessionStoreOptions { KeyPrefix = TestStores.UniquePrefix() };
        configure(options);
        return new RedisSessionStore(_multiplexer!, options);
    }
}

/// <summary>
/// The documented ACL rules with the store on Redis's own clock (the conformance suite runs on a test clock, which
/// the scripts take instead of <c>TIME</c>).
/// </summary>
public sealed class LeastPrivilegeStoreClockTests
{
    [Fact]
    public async Task Every_operation_works_on_the_store_clock_as_a_user_limited_to_the_documented_rules()
    {
        await using var server = await RedisProcess.StartAsync();
        await server.CommandAsync($"ACL SETUSER {SessionStoreAcl.User} {SessionStoreAcl.Rules}");
        await using var store = new RedisSessionStore(new RedisSessionStoreOptions
        {
            Configuration = $"127.0.0.1:{server.Port},user={SessionStoreAcl.User},password={SessionStoreAcl.Password}",
            KeyPrefix = SessionStoreAcl.Prefix,
        });
        var session = SessionSnapshot.CreateNew(SessionId.Create(), DateTimeOffset.UtcNow, TimeSpan.FromMinutes(20), TimeSpan.FromHours(1));

        Assert.True(await store.CreateAsync(session));
        Assert.Equal(SessionSaveResult.Saved, await store.SaveAsync(new SessionChanges(session.Id!, new Dictionary<string, byte[]> { ["a"] = [1] }, principalChanged: true, principal: "alice")));
        Assert.Equal([1], (await store.LoadAsync(session.Id!))!.Attributes["a"]);
        Assert.Single(await store.FindByPrincipalAsync("alice"));
        Assert.Equal(1, await store.CountAsync());
        Assert.True(await store.DeleteAsync(session.Id!));
    }
}

/// <summary>The start-up advice about maxmemory-policy: once when sessions can be evicted, never when they cannot or when INFO is refused.</summary>
public sealed class EvictionPolicyTests
{
    [Theory]
    [InlineData("allkeys-lru", 1)]
    [InlineData("allkeys-random", 1)]
    [InlineData("noeviction", 0)]
    [InlineData("volatile-lru", 0)]
    public async Task Store_warns_once_when_Redis_may_evict_sessions(string policy, int warnings)
    {
        await using var server = await RedisProcess.StartAsync("--maxmemory-policy", policy);
        var logger = new RedisEventLogger();
        await using var store = new RedisSessionStore(new RedisSessionStoreOptions { Configuration = $"127.0.0.1:{server.Port}" }, logger: logger);
        await UseAsync(store);
        await UseAsync(store);
        await ServerProcess.UntilAsync(() => Task.FromResult(logger.Count(4012) >= warnings), TimeSpan.FromSeconds(10), "the eviction policy was checked");
        await UseAsync(store);
        Assert.Equal(warnings, logger.Count(4012));
    }

    [Fact]
    public async Task Store_says_nothing_about_eviction_when_INFO_is_refused()
    {
        await using var server = await RedisProcess.StartAsync("--maxmemory-policy", "allkeys-lru");
        await server.CommandAsync($"ACL SETUSER {SessionStoreAcl.User} {SessionStoreAcl.Rules.Replace(" +info", " -info", StringComparison.Ordinal)}");
        var logger = new RedisEventLogger();
        await using var store = new RedisSessionStore(
            new RedisSessionStoreOptions { Configuration = $"127.0.0.1:{server.Port},user={SessionStoreAcl.User},password={SessionStoreAcl.Password}", KeyPrefix = SessionStoreAcl.Prefix },
            logger: logger);
        for (var i = 0; i < 5; i++)
        {
            await UseAsync(store);
        }

        Assert.Equal(0, logger.Count(4012));
        Assert.Equal(0, logger.Count(4001));
    }

    private static async Task UseAsync(RedisSessionStore store)
    {
        var session = SessionSnapshot.CreateNew(SessionId.Create(), DateTimeOffset.UtcNow, TimeSpan.FromMinutes(20), TimeSpan.FromHours(1));
        Assert.True(await store.CreateAsync(session));
        Assert.NotNull(await store.LoadAsync(session.Id!));
    }
}

/// <summary>Records the event ids the Redis store logs.</summary>
internal sealed class RedisEventLogger : ILogger<RedisSessionStore>
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<int> _events = new();

    public int Count(int eventId) => _events.Count(id => id == eventId);

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        => _events.Enqueue(eventId.Id);
}
