using System.Globalization;

namespace ClusterSession.Testing.Servers;

/// <summary>
/// Finds Debian's PostgreSQL server binaries. Free of xunit on purpose: the benchmark harness links
/// this file too, so the test fixture and the harness start their servers from the same place.
/// </summary>
internal static class PostgresBinaries
{
    private const string Root = "/usr/lib/postgresql";

    /// <summary>The bin directory of the highest installed version that has initdb and pg_ctl.</summary>
    /// <param name="hint">Appended to the error when none is installed (another way to get a server).</param>
    public static string FindBinDirectory(string? hint = null)
    {
        var candidates = Directory.Exists(Root)
            ? Directory.GetDirectories(Root)
                .Where(d => File.Exists(Path.Combine(d, "bin", "initdb")) && File.Exists(Path.Combine(d, "bin", "pg_ctl")))
                .OrderByDescending(d => double.TryParse(Path.GetFileName(d), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : 0)
                .ToList()
            : [];
        return candidates.Count > 0
            ? Path.Combine(candidates[0], "bin")
            : throw new InvalidOperationException(
                $"No PostgreSQL server binaries under {Root}/*/bin: install the Debian package 'postgresql' (apt-get install postgresql){hint}.");
    }
}
