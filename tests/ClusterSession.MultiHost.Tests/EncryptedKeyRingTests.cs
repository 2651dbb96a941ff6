using System.Net;
using ClusterSession.Testing.Servers;

namespace ClusterSession.MultiHost.Tests;

/// <summary>
/// The key ring kept in the store, encrypted at rest with <c>ProtectKeysWithCertificate</c> on two OS processes of
/// the app: what a reader of the store gets, that the hosts still share sign-ins, and what a host without the
/// certificate does (rejects the other hosts' cookies, says why, and adds no key in clear to the shared ring).
/// </summary>
public abstract class EncryptedKeyRingTests(EncryptedKeyRingHosts hosts)
{
    private static readonly TimeSpan LogDeadline = TimeSpan.FromSeconds(10);

    /// <summary>ClusterSession's start-up warning for a ring shared with no encryptor (event id 23).</summary>
    private const string UnencryptedRingWarning = "ClusterSession.AspNetCore.DataProtection[23]";

    /// <summary>ClusterSession refusing a key in clear for a ring of encrypted keys (event id 24).</summary>
    private const string KeyInClearRefused = "ClusterSession.AspNetCore.DataProtection[24]";

    /// <summary>What Data Protection logs (XmlKeyManager, event id 24) when it cannot decrypt a key of the ring.</summary>
    private const string CannotDecrypt = "Unable to retrieve the decryption key.";

    [Fact]
    public async Task Stored_key_ring_holds_master_keys_only_encrypted_with_the_certificate()
    {
        Assert.Equal(HttpStatusCode.OK, (await new Browser().PostAsync(hosts.A, "/signin/alice")).Status);

        var ring = await hosts.ReadKeyRingAsync();

        Assert.NotEmpty(ring);
        Assert.All(ring, xml =>
        {
            Assert.StartsWith("<key ", xml, StringComparison.Ordinal);
            Assert.DoesNotContain("<masterKey", xml, StringComparison.Ordinal);
            Assert.DoesNotContain("unencrypted form", xml, StringComparison.Ordinal);
            Assert.Contains("<encryptedSecret", xml, StringComparison.Ordinal);
            Assert.Contains("EncryptedXmlDecryptor", xml, StringComparison.Ordinal);
            Assert.Contains("<EncryptedData", xml, StringComparison.Ordinal);
            Assert.Contains("<X509Certificate>", xml, StringComparison.Ordinal);
        });
        Assert.DoesNotContain(UnencryptedRingWarning, hosts.A.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(UnencryptedRingWarning, hosts.B.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sign_in_on_one_host_with_the_certificate_is_accepted_on_the_other()
    {
        var browser = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(hosts.A, "/signin/bob")).Status);

        Assert.Equal((HttpStatusCode.OK, "bob"), await browser.GetAsync(hosts.B, "/me"));
        Assert.Equal((HttpStatusCode.OK, "bob"), await browser.GetAsync(hosts.A, "/me"));
    }

    [Fact]
    public async Task Host_without_the_certificate_rejects_the_cookie_says_why_and_adds_no_key_in_clear()
    {
        var browser = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(hosts.A, "/signin/carol")).Status);
        var ringBefore = await hosts.ReadKeyRingAsync();

        await using var stranger = await hosts.StartHostWithoutCertificateAsync();

        // Its start-up names the missing encryption; the other hosts' cookie is not accepted: 401, not 500.
        await UntilLoggedAsync(stranger, UnencryptedRingWarning);
        Assert.Equal(HttpStatusCode.Unauthorized, (await browser.GetAsync(stranger, "/me")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await browser.GetAsync(stranger, "/me")).Status);
        await UntilLoggedAsync(stranger, CannotDecrypt);

        // Protecting anything needs a key it can use: Data Protection creates one in clear, the store refuses it.
        Assert.Equal(HttpStatusCode.InternalServerError, (await new Browser().PostAsync(stranger, "/signin/mallory")).Status);
        await UntilLoggedAsync(stranger, KeyInClearRefused);
        Assert.Contains("ProtectKeysWithCertificate", stranger.Output, StringComparison.Ordinal);

        var ringAfter = await hosts.ReadKeyRingAsync();
        Assert.Equal(ringBefore, ringAfter);
        Assert.All(ringAfter, xml => Assert.DoesNotContain("<masterKey", xml, StringComparison.Ordinal));

        // The hosts with the certificate are unaffected.
        Assert.Equal((HttpStatusCode.OK, "carol"), await browser.GetAsync(hosts.B, "/me"));
    }

    private static Task UntilLoggedAsync(AppHost host, string text)
        => ServerProcess.UntilAsync(() => Task.FromResult(host.Output.Contains(text, StringComparison.Ordinal)), LogDeadline, $"the host logs \"{text}\"");
}

/// <summary>Over Redis.</summary>
public sealed class RedisEncryptedKeyRingTests(RedisEncryptedKeyRingHosts hosts) : EncryptedKeyRingTests(hosts), IClassFixture<RedisEncryptedKeyRingHosts>;

/// <summary>Over PostgreSQL.</summary>
public sealed class PostgresEncryptedKeyRingTests(PostgresEncryptedKeyRingHosts hosts) : EncryptedKeyRingTests(hosts), IClassFixture<PostgresEncryptedKeyRingHosts>;
