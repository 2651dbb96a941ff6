using ClusterSession.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClusterSession.AspNetCore.Protection;

/// <summary>
/// Puts Data Protection's key ring into the shared session store, so that every host of the application can
/// read the cookies (authentication, antiforgery, TempData) any other host wrote. Only when the application
/// left key persistence unconfigured (<see cref="KeyManagementOptions.XmlRepository"/> null), when
/// <see cref="ClusterSessionOptions.ShareDataProtectionKeys"/> is on and when the store is shared
/// (implements <see cref="IKeyRingStore"/>). The key encryption at rest stays the application's choice
/// (<see cref="KeyManagementOptions.XmlEncryptor"/>, e.g. <c>ProtectKeysWithCertificate</c>): only the repository is
/// set here, and Data Protection's key manager applies the encryptor before it hands a key to the repository. Without
/// one, a warning says so once, when Data Protection first reads its options (at start-up, when it loads the key ring).
/// </summary>
internal sealed class ShareDataProtectionKeys(IOptions<ClusterSessionOptions> options, IServiceProvider services)
    : IPostConfigureOptions<KeyManagementOptions>
{
    public void PostConfigure(string? name, KeyManagementOptions keyManagement)
    {
        if (keyManagement.XmlRepository is not null || !options.Value.ShareDataProtectionKeys)
        {
            return;
        }

        if (services.GetService<ISessionStore>() is IKeyRingStore store)
        {
            var logger = (services.GetService<ILoggerFactory>() ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance)
                .CreateLogger("ClusterSession.AspNetCore.DataProtection");
            keyManagement.XmlRepository = new KeyRingXmlRepository(store, logger);
            if (keyManagement.XmlEncryptor is null)
            {
                Log.KeyRingUnencrypted(logger);
            }
        }
    }
}

/// <summary>
/// Makes the application discriminator (which isolates one application's protected payloads from another's)
/// the same on every host when the key ring is shared through the store: ASP.NET Core's default is the
/// content-root path, which differs between hosts, containers and deployments. It becomes the application
/// name, unless the application set a discriminator itself (<c>SetApplicationName</c>).
/// </summary>
internal sealed class ShareApplicationDiscriminator(IServiceProvider services) : IPostConfigureOptions<DataProtectionOptions>
{
    public void PostConfigure(string? name, DataProtectionOptions dataProtection)
    {
        var host = services.GetService<IHostEnvironment>();
        if (host is null || string.IsNullOrEmpty(host.ApplicationName) || !IsContentRoot(dataProtection.ApplicationDiscriminator, host.ContentRootPath))
        {
            return;
        }

        if (services.GetService<IOptions<KeyManagementOptions>>()?.Value.XmlRepository is KeyRingXmlRepository)
        {
            dataProtection.ApplicationDiscriminator = host.ApplicationName;
        }
    }

    private static bool IsContentRoot(string? discriminator, string? contentRoot)
    {
        if (discriminator is null || string.IsNullOrEmpty(contentRoot))
        {
            return false;
        }

        // ASP.NET Core's default is the content root with or without its trailing separator, by version and switch.
        char[] separators = [Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar];
        return string.Equals(discriminator.TrimEnd(separators), contentRoot.TrimEnd(separators), StringComparison.Ordinal);
    }
}
