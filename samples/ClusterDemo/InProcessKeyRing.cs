using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;

namespace ClusterDemo;

/// <summary>
/// A Data Protection key ring kept in this process's memory: for hosts of the demo that have no shared store to
/// keep it in (the load balancer, a node on the in-memory store). Nothing is written to the user's profile, and
/// the keys die with the process.
/// </summary>
internal sealed class InProcessKeyRing : IXmlRepository
{
    private readonly List<XElement> _elements = [];

    public IReadOnlyCollection<XElement> GetAllElements()
    {
        lock (_elements)
        {
            return [.. _elements.Select(e => new XElement(e))];
        }
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        lock (_elements)
        {
            _elements.Add(new XElement(element));
        }
    }

    /// <summary>
    /// Keeps the Data Protection keys of <paramref name="services"/> in <paramref name="keyRing"/>, or, when it is
    /// null, where ClusterSession puts them (the shared store). Either way without encryption at rest, said
    /// explicitly so that Data Protection does not warn at every start: the demo has no certificate to protect
    /// them with. An application protects them (<c>ProtectKeysWithCertificate</c> and the like).
    /// </summary>
    public static void Use(IServiceCollection services, InProcessKeyRing? keyRing)
        => services.Configure<KeyManagementOptions>(keys =>
        {
            keys.XmlEncryptor = new NullXmlEncryptor();
            if (keyRing is not null)
            {
                keys.XmlRepository = keyRing;
            }
        });
}
