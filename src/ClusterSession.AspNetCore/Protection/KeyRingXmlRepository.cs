using System.Xml.Linq;
using ClusterSession.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.Logging;

namespace ClusterSession.AspNetCore.Protection;

/// <summary>
/// Data Protection's key repository over the session store's key ring (<see cref="IKeyRingStore"/>). It refuses to
/// add a key whose secret is in clear to a ring that already holds encrypted keys: that is a host without the
/// certificate (or whatever encrypts the other hosts' keys), and its new key would become the default key of every
/// host at their next key-ring refresh, so the whole ring would fall back to a master key anyone reading the store can use.
/// </summary>
internal sealed class KeyRingXmlRepository(IKeyRingStore store, ILogger logger) : IXmlRepository
{
    /// <summary>Data Protection's XML namespace (its <c>XmlConstants</c>), for the two markers below.</summary>
    private static readonly XNamespace DataProtection = "http://schemas.asp.net/2015/03/dataProtection";

    /// <summary>The attribute Data Protection puts on a secret that an <c>IXmlEncryptor</c> is to replace.</summary>
    private static readonly XName RequiresEncryption = DataProtection + "requiresEncryption";

    /// <summary>The element an <c>IXmlEncryptor</c>'s output is wrapped in.</summary>
    private static readonly XName EncryptedSecret = DataProtection + "encryptedSecret";

    public IReadOnlyCollection<XElement> GetAllElements() => store.GetAllElements();

    public void StoreElement(XElement element, string friendlyName)
    {
        if (HoldsSecretInClear(element) && store.GetAllElements().Any(HoldsEncryptedSecret))
        {
            Log.UnencryptedKeyRefused(logger, friendlyName);
            throw new InvalidOperationException(
                $"Data Protection key '{friendlyName}' was not added to the key ring in the session store: its master key is not encrypted, " +
                "but the ring holds keys that other hosts encrypted. This host has no key encryption configured (or another host's certificate is missing here), " +
                "so it cannot read the ring and must not add a key anyone reading the store could use. Configure the same encryption as the other hosts, " +
                "e.g. services.AddDataProtection().ProtectKeysWithCertificate(certificate) (docs/security.md, \"The key ring at rest\").");
        }

        store.StoreElement(element, friendlyName);
    }

    /// <summary>Whether <paramref name="element"/> holds a secret Data Protection meant to encrypt and no encryptor replaced.</summary>
    internal static bool HoldsSecretInClear(XElement element)
        => element.DescendantsAndSelf().Any(static e => (bool?)e.Attribute(RequiresEncryption) == true);

    internal static bool HoldsEncryptedSecret(XElement element) => element.Descendants(EncryptedSecret).Any();
}
