using System.Security.Cryptography;
using System.Text;

namespace ClusterDemo;

/// <summary>The demo's three users, all with the password "demo".</summary>
internal static class DemoUsers
{
    public static readonly IReadOnlyList<string> Names = ["alice", "bob", "carol"];

    private static readonly byte[] Password = "demo"u8.ToArray();

    public static bool Verify(string? user, string? password)
    {
        // Compare the password in constant time even for a demo: samples get copied.
        var passwordMatches = CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(password ?? ""), Password);
        return passwordMatches && user is not null && Names.Contains(user, StringComparer.Ordinal);
    }
}
