using System.Net;
using System.Text.Json;
using ClusterSession.Testing.Servers;

namespace ClusterSession.Packaging.Tests;

/// <summary>
/// docs/getting-started.md, run: a new app made with <c>dotnet new web</c> outside the solution, the packages
/// added with <c>dotnet add package</c> from the folder feed (package references only), the quick start's
/// Program.cs, built, "deployed" to two hosts (separate content roots and home directories) and run over one
/// redis-server; a browser whose requests alternate between them, as behind a round-robin load balancer.
/// </summary>
[Collection(PackageFeedCollection.Name)]
public sealed class ConsumerAppTests(PackageFeed feed, RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private static readonly TimeSpan CommandDeadline = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task A_new_app_on_the_packages_alone_shares_sign_in_and_session_between_two_instances_over_one_redis()
    {
        var dll = await BuildConsumerAppAsync();
        var (a, b) = (await StartHostAsync(dll, "host-a"), await StartHostAsync(dll, "host-b"));
        await using (a)
        await using (b)
        {
            using var browser = new QuickStartBrowser();

            var first = await browser.GetPageAsync(a.Address);
            Assert.Null(first.User);
            Assert.Equal(1, first.Visits);

            // Signed in on B with the form A rendered: B reads A's antiforgery cookie, so the key ring is shared.
            Assert.Equal(HttpStatusCode.Redirect, await browser.PostFormAsync(b.Address, "/sign-in", first, ("name", "alice")));

            var onB = await browser.GetPageAsync(b.Address);
            Assert.Equal("alice", onB.User);
            Assert.Equal(2, onB.Visits); // written through A, read through B

            var onA = await browser.GetPageAsync(a.Address);
            Assert.Equal("alice", onA.User);
            Assert.Equal(3, onA.Visits); // written through B, read through A

            // Signed out on A: B no longer accepts the cookies of that sign-in.
            var cookiesOfTheSignIn = browser.CookieHeader;
            Assert.Equal(HttpStatusCode.Redirect, await browser.PostFormAsync(a.Address, "/sign-out", onA));
            var replayedOnB = await browser.GetPageAsync(b.Address, cookiesOfTheSignIn);
            Assert.Null(replayedOnB.User);
            Assert.Equal(1, replayedOnB.Visits);

            QuickStartTests.AssertNoErrorLogged(a);
            QuickStartTests.AssertNoErrorLogged(b);
        }
    }

    /// <summary>The steps of docs/getting-started.md; returns the built app's dll.</summary>
    private async Task<string> BuildConsumerAppAsync()
    {
        var app = Path.Combine(feed.Root, "app");
        var machineSources = SourceLines(await DotNet.RunAsync(feed.Root, CommandDeadline, "nuget", "list", "source", "--format", "short"));
        await DotNet.RunAsync(feed.Root, CommandDeadline, "new", "web", "-o", app, "-n", "MyApp", "--no-restore");
        foreach (var id in new[] { "ClusterSession.AspNetCore", "ClusterSession.Redis" })
        {
            await DotNet.RunAsync(app, CommandDeadline, "add", "package", id, "--version", feed.Version, "--no-restore");
        }

        File.Copy(Path.Combine(Repository.Root, "samples/QuickStart/Program.cs"), Path.Combine(app, "Program.cs"), overwrite: true);

        // The folder feed in the app's own nuget.config, beside (not instead of) the sources the machine is configured with.
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="clustersession-local" value="{feed.Directory}" />
              </packageSources>
            </configuration>
            """);
        var appSources = SourceLines(await DotNet.RunAsync(app, CommandDeadline, "nuget", "list", "source", "--format", "short"));
        Assert.Contains(appSources, s => s.EndsWith(" " + feed.Directory, StringComparison.Ordinal));
        Assert.All(machineSources, s => Assert.Contains(s, appSources));

        // A packages folder of this run's own; the machine's is only read (fallback) for the third-party packages.
        var packages = Path.Combine(feed.Root, "packages");
        string[] restore = [$"-p:RestorePackagesPath={packages}"];
        var machinePackages = await MachinePackagesFolderAsync(app);
        if (machinePackages is not null)
        {
            restore = [.. restore, $"-p:RestoreFallbackFolders={machinePackages}"];
        }

        await DotNet.RunAsync(app, CommandDeadline, ["build", "-c", "Release", "-nologo", "-nodeReuse:false", .. restore]);

        var project = File.ReadAllText(Path.Combine(app, "MyApp.csproj"));
        Assert.DoesNotContain("ProjectReference", project, StringComparison.Ordinal);
        Assert.Contains($"<PackageReference Include=\"ClusterSession.AspNetCore\" Version=\"{feed.Version}\" />", project, StringComparison.Ordinal);
        using (var assets = JsonDocument.Parse(File.ReadAllText(Path.Combine(app, "obj/project.assets.json"))))
        {
            var libraries = assets.RootElement.GetProperty("libraries");
            foreach (var id in new[] { "ClusterSession", "ClusterSession.AspNetCore", "ClusterSession.Redis" })
            {
                Assert.Equal("package", libraries.GetProperty($"{id}/{feed.Version}").GetProperty("type").GetString());
                Assert.True(File.Exists(Path.Combine(packages, id.ToLowerInvariant(), feed.Version.ToLowerInvariant(), $"{id.ToLowerInvariant()}.{feed.Version.ToLowerInvariant()}.nupkg")),
                    $"{id} {feed.Version} was not restored from the folder feed into this run's packages folder.");
            }
        }

        return Path.Combine(app, "bin/Release/net10.0/MyApp.dll");
    }

    /// <summary>A copy of the build output in a directory of its own, started with its own HOME: a host of its own.</summary>
    private async Task<AppProcess> StartHostAsync(string dll, string host)
    {
        var root = Path.Combine(feed.Root, host);
        CopyDirectory(Path.GetDirectoryName(dll)!, root);
        return await AppProcess.StartAsync(Path.Combine(root, Path.GetFileName(dll)), root, Path.Combine(root, "home"), "--Redis", redis.Configuration);
    }

    private static async Task<string?> MachinePackagesFolderAsync(string workingDirectory)
    {
        var output = await DotNet.RunAsync(workingDirectory, CommandDeadline, "nuget", "locals", "global-packages", "--list");
        var folder = output.Split(':', 2) is [_, var path] ? path.Trim() : null;
        return folder is not null && Directory.Exists(folder) ? folder : null;
    }

    /// <summary>The lines of <c>dotnet nuget list source --format short</c>, e.g. "E https://host/v3/index.json".</summary>
    private static string[] SourceLines(string output) =>
        [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(l => l.Length > 2 && l[1] == ' ')];

    private static void CopyDirectory(string source, string destination)
    {
        foreach (var directory in Directory.GetDirectories(source, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(directory.Replace(source, destination, StringComparison.Ordinal));
        }

        Directory.CreateDirectory(destination);
        foreach (var file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            File.Copy(file, file.Replace(source, destination, StringComparison.Ordinal));
        }
    }
}
