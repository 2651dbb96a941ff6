using System.Buffers.Text;
using System.Text;

namespace ClusterSession.Upgrade.Tests;

/// <summary>
/// Looks for session ids in what a store holds, in every form a store could keep one: the id as the cookie carries it
/// (text), its bytes (the base64url decoded), and either of those as hex (how PostgreSQL's JSON shows a bytea).
/// </summary>
public static class RawSessionIds
{
    /// <summary>Where each id was found, the id itself replaced by its owner's name so the report does not spread it.</summary>
    public static IReadOnlyList<string> Find(IReadOnlyList<StoredBytes> store, IReadOnlyDictionary<string, string> ownerById)
    {
        var forms = ownerById.Keys.SelectMany(id => Forms(id).Select(form => (Id: id, form.Name, form.Bytes))).ToList();
        var found = new List<string>();
        foreach (var item in store)
        {
            foreach (var (id, name, bytes) in forms)
            {
                if (item.Bytes.AsSpan().IndexOf(bytes) >= 0)
                {
                    var location = ownerById.Aggregate(item.Location, (text, owner) => text.Replace(owner.Key, $"<{owner.Value}>", StringComparison.Ordinal));
                    found.Add($"the session id of {ownerById[id]} ({name}) in {location}");
                }
            }
        }

        return found;
    }

    private static IEnumerable<(string Name, byte[] Bytes)> Forms(string id)
    {
        var text = Encoding.UTF8.GetBytes(id);
        yield return ("as text", text);
        yield return ("as hex text", Hex(text));
        if (Base64Url.IsValid(id))
        {
            var decoded = Base64Url.DecodeFromChars(id);
            if (decoded.Length >= 8)
            {
                yield return ("as bytes", decoded);
                yield return ("as hex bytes", Hex(decoded));
            }
        }
    }

    private static byte[] Hex(byte[] bytes) => Encoding.ASCII.GetBytes(Convert.ToHexStringLower(bytes));
}
