using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ClusterSession.Testing.Servers;
using Npgsql;
using StackExchange.Redis;

namespace ClusterSession.MultiHost.Tests;

/// <summary>
/// Two hosts of the app over one real store, both encrypting Data Protection's keys at rest with one self-signed
/// certificate (<c>ProtectKeysWithCertificate</c>, from a PFX file the fixture writes), and a way to start a third
/// host over the same store without it.
/// </summary>
public abstract class EncryptedKeyRingHosts : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "cs-keyring-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly string _password = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
    private AppHost[] _hosts = [];

    public AppHost A => _hosts[0];

    public AppHost B => _hosts[1];

    /// <summary>The arguments that put a host on this fixture's store (and key prefix).</summary>
    protected abstract string[] StoreArguments { get; }

    public async Task InitializeAsync()
    {
        await StartStoreAsync();
        Directory.CreateDirectory(_directory);
        var certificate = Path.Combine(_directory, "key-ring.pfx");
        await File.WriteAllBytesAsync(certificate, SelfSignedPfx(_password));
        _hosts = await AppHost.StartManyAsync(2, _ => [.. StoreArguments, "--KeyCertificate", certificate, "--KeyCertificatePassword", _password]);
    }

    /// <summary>Starts a host of the same app over the same store, configured without the certificate.</summary>
    public Task<AppHost> StartHostWithoutCertificateAsync() => AppHost.StartAsync(_ => StoreArguments);

    /// <summary>The key ring's elements as the store holds them, read directly (not through the app).</summary>
    public abstract Task<IReadOnlyList<string>> ReadKeyRingAsync();

    public async Task DisposeAsync()
    {
        foreach (var host in _hosts)
        {
            await host.DisposeAsync();
        }

        await StopStoreAsync();
        Directory.Delete(_directory, recursive: true);
    }

    protected abstract Task StartStoreAsync();

    protected abstract Task StopStoreAsync();

    /// <summary>A self-signed certificate with an RSA key that may encrypt keys, as a PFX with its private key.</summary>
    private static byte[] SelfSignedPfx(string password)
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=ClusterSession key ring test", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.DataEncipherment, critical: false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return certificate.Export(X509ContentType.Pfx, password);
    }
}

/// <summary>Over a real redis-server: the ring is the list <c>&lt;prefix&gt;dataprotection-keys</c>.</summary>
public sealed class RedisEncryptedKeyRingHosts : EncryptedKeyRingHosts
{
    private readonly RedisServerFixture _redis = new();
    private readonly string _prefix = "kr" + Guid.NewGuid().ToString("N")[..8] + ":";

    protected override string[] StoreArguments => ["--Store", "redis", "--Redis", _redis.Configuration, "--Prefix", _prefix];

    public override async Task<IReadOnlyList<string>> ReadKeyRingAsync()
    {
        await using var connection = await ConnectionMultiplexer.ConnectAsync(_redis.Configuration);
        var values = await connection.GetDatabase().ListRangeAsync(_prefix + "dataprotection-keys");
        return [.. values.Select(static v => v.ToString())];
    }

    protected override Task StartStoreAsync() => _redis.InitializeAsync();

    protected override Task StopStoreAsync() => _redis.DisposeAsync();
}

/// <summary>Over a real PostgreSQL server: the ring is the table <c>&lt;prefix&gt;key_ring</c>.</summary>
public sealed class PostgresEncryptedKeyRingHosts : EncryptedKeyRingHosts
{
    private readonly PostgresServerFixture _postgres = new();
    private readonly string _prefix = "kr" + Guid.NewGuid().ToString("N")[..8] + "_";

    protected override string[] StoreArguments => ["--Store", "postgres", "--Postgres", _postgres.ConnectionString, "--Prefix", _prefix];

    public override async Task<IReadOnlyList<string>> ReadKeyRingAsync()
    {
        await using var dataSource = NpgsqlDataSource.Create(_postgres.ConnectionString);
        await using var command = dataSource.CreateCommand($"SELECT xml FROM \"public\".\"{_prefix}key_ring\" ORDER BY id");
        await using var reader = await command.ExecuteReaderAsync();
        var elements = new List<string>();
        while (await reader.ReadAsync())
        {
            elements.Add(reader.GetString(0));
        }

        return elements;
    }

    protected override Task StartStoreAsync() => _postgres.InitializeAsync();

    protected override Task StopStoreAsync() => _postgres.DisposeAsync();
}
