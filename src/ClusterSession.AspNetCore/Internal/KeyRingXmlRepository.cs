using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.Repositories;

namespace ClusterSession.AspNetCore.Internal;

/// <summary>Data Protection's key repository over the session store's key ring (<see cref="IKeyRingStore"/>).</summary>
internal sealed class KeyRingXmlRepository(IKeyRingStore store) : IXmlRepository
{
    public IReadOnlyCollection<XElement> GetAllElements() => store.GetAllElements();

    public void StoreElement(XElement element, string friendlyName) => store.StoreElement(element, friendlyName);
}
