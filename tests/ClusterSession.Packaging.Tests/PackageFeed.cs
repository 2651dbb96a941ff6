namespace ClusterSession.Packaging.Tests;

/// <summary>
/// The packages of this build in a temporary folder feed: <c>dotnet pack ClusterSession.slnx --no-build</c> once
/// for the test collection, at the repository's version plus a suffix unique to this run (e.g.
/// 0.2.0-preview.1.t3f9a0c1b2d4e), so no package cache on the machine can hold a stale copy of it.
/// </summary>
public sealed class PackageFeed : IAsyncLifetime
{
    /// <summary>A temporary directory for this run: the feed, the consumer app, its packages folder.</summary>
    public string Root { get; } = Path.Combine(Path.GetTempPath(), "cs-packaging-" + Guid.NewGuid().ToString("N"));

    public string Directory => Path.Combine(Root, "feed");

    /// <summary>The version of every package in the feed.</summary>
    public string Version { get; } = UniqueVersion();

    /// <summary>What <c>dotnet pack</c> printed.</summary>
    public string PackOutput { get; private set; } = string.Empty;

    public string PackagePath(string id, string extension = "nupkg") => Path.Combine(Directory, $"{id}.{Version}.{extension}");

    public async Task InitializeAsync()
    {
        System.IO.Directory.CreateDirectory(Directory);
        var suffix = Version[(Repository.VersionPrefix.Length + 1)..];
        PackOutput = await DotNet.RunAsync(Repository.Root, TimeSpan.FromMinutes(5),
            "pack", "ClusterSession.slnx", "-c", Repository.Configuration, "--no-build", "-nologo", "-nodeReuse:false",
            "-o", Directory, $"-p:VersionSuffix={suffix}");
    }

    public Task DisposeAsync()
    {
        try
        {
            System.IO.Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A process of the consumer app still closing a file; the OS cleans the temp directory.
        }

        return Task.CompletedTask;
    }

    private static string UniqueVersion()
    {
        var run = "t" + Guid.NewGuid().ToString("N")[..12];
        return Repository.VersionPrefix + "-" + (Repository.VersionSuffix.Length == 0 ? run : Repository.VersionSuffix + "." + run);
    }
}

[CollectionDefinition(Name)]
public sealed class PackageFeedCollection : ICollectionFixture<PackageFeed>
{
    public const string Name = "package feed";
}
