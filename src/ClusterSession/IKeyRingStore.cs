using System.Xml.Linq;

namespace ClusterSession;

/// <summary>
/// A store that also keeps a key ring: the XML elements of ASP.NET Core Data Protection's keys, so that
/// every server sharing the sessions also shares the keys that protect the cookies pointing at them.
/// ClusterSession.AspNetCore adapts it to Data Protection's <c>IXmlRepository</c>. A store implements it
/// only when it is shared between servers (the in-memory store does not).
/// </summary>
/// <remarks>
/// Synchronous, because Data Protection's <c>IXmlRepository</c> is; Data Protection calls it rarely
/// (when it loads or refreshes its cached key ring and when it creates a key), never per request.
/// Elements are only ever added: revocations and new keys are new elements, and Data Protection's key
/// manager reads all of them, so older keys stay readable after a rotation.
/// </remarks>
public interface IKeyRingStore
{
    /// <summary>Reads every element stored so far, oldest first.</summary>
    /// <returns>The elements; empty when none was stored.</returns>
    /// <exception cref="SessionStoreUnavailableException">The store could not be reached.</exception>
    IReadOnlyCollection<XElement> GetAllElements();

    /// <summary>Adds <paramref name="element"/> to the key ring.</summary>
    /// <param name="element">The element (a key or a revocation).</param>
    /// <param name="friendlyName">A name Data Protection chooses (for example <c>key-{id}</c>); kept for operators, not unique.</param>
    /// <exception cref="SessionStoreUnavailableException">The store could not be reached; the element was possibly not stored.</exception>
    void StoreElement(XElement element, string friendlyName);
}
