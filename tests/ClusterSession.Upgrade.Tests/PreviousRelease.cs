using System.Diagnostics;
using System.Reflection;
using ClusterSession.Demo.Tests;

namespace ClusterSession.Upgrade.Tests;

/// <summary>
/// A released ClusterDemo and CLI, built from this repository's history: a commit named in <c>eng/baseline-release.txt</c>
/// (its first line is the previous release; further lines older releases the current code still upgrades from), built once
/// by <c>eng/build-baseline.sh</c> under <c>artifacts/baseline/</c> (test.sh does it before the tests; when it has not,
/// the first test that needs it does).
/// </summary>
public sealed class PreviousRelease
{
    private static readonly TimeSpan BuildDeadline = TimeSpan.FromMinutes(10);
    private static readonly Dictionary<string, Lazy<Task<PreviousRelease>>> Built = new(StringComparer.Ordinal);

    private PreviousRelease(string name, string demoDll, string cliDll)
    {
        Name = name;
        DemoDll = demoDll;
        CliDll = cliDll;
    }

    /// <summary>The release as eng/baseline-release.txt names it: "&lt;tag&gt; (&lt;short commit&gt;)".</summary>
    public string Name { get; }

    /// <summary>The previous release's samples/ClusterDemo build.</summary>
    public string DemoDll { get; }

    /// <summary>The previous release's tools/ClusterSession.Cli build.</summary>
    public string CliDll { get; }

    /// <summary>The current code's ClusterSession.Cli build (a project reference of this test project).</summary>
    public static string CurrentCliDll => Metadata("ClusterSessionCliDll");

    /// <summary>The previous release (the first line of eng/baseline-release.txt), built (once per test run, and once per clone: the build is cached).</summary>
    public static Task<PreviousRelease> GetAsync() => GetAsync(Releases()[0].Tag);

    /// <summary>The release with this tag in eng/baseline-release.txt, built.</summary>
    public static Task<PreviousRelease> GetAsync(string tag)
    {
        var (commit, _) = Releases().SingleOrDefault(r => r.Tag == tag);
        if (commit is null)
        {
            throw new InvalidOperationException($"eng/baseline-release.txt names no release {tag}; the test needs it as a baseline.");
        }

        lock (Built)
        {
            if (!Built.TryGetValue(tag, out var built))
            {
                built = new(() => BuildAsync(commit, tag));
                Built.Add(tag, built);
            }

            return built.Value;
        }
    }

    private static List<(string Commit, string Tag)> Releases()
        => [.. File.ReadAllLines(Path.Combine(DemoProcess.RepositoryRoot, "eng", "baseline-release.txt"))
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(p => (p[0], p[1]))];

    private static async Task<PreviousRelease> BuildAsync(string commit, string tag)
    {
        var root = DemoProcess.RepositoryRoot;
        var script = Path.Combine(root, "eng", "build-baseline.sh");
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(tag);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("bash did not start.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using (var deadline = new CancellationTokenSource(BuildDeadline))
        {
            try
            {
                await process.WaitForExitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"{script} did not finish within {BuildDeadline.TotalMinutes} min.");
            }
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"The previous release could not be built ({script} exited with {process.ExitCode}); the upgrade tests cannot run without it:\n{await error}{await output}");
        }

        var builtFile = (await output).Trim();
        var lines = File.ReadAllLines(builtFile);
        string Entry(string key)
        {
            var path = lines.Single(l => l.StartsWith(key + "=", StringComparison.Ordinal))[(key.Length + 1)..];
            var full = Path.Combine(root, path);
            return File.Exists(full) ? full : throw new InvalidOperationException($"{full}, named in {builtFile}, is missing: delete {Path.GetDirectoryName(builtFile)} and run {script} again.");
        }

        return new PreviousRelease($"{tag} ({commit[..7]})", Entry("demo"), Entry("cli"));
    }

    private static string Metadata(string key)
        => typeof(PreviousRelease).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;
}
