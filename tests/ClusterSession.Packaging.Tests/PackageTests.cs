using System.IO.Compression;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Xml.Linq;

namespace ClusterSession.Packaging.Tests;

/// <summary>What <c>dotnet pack</c> of the solution makes, read from the .nupkg and .snupkg files.</summary>
[Collection(PackageFeedCollection.Name)]
public sealed class PackageTests(PackageFeed feed)
{
    [Fact]
    public void Pack_makes_the_five_packages_the_tool_and_their_symbol_packages_without_a_warning()
    {
        string[] expected = [.. Repository.PackageIds.Append(Repository.ToolPackageId).SelectMany(id => new[] { $"{id}.{feed.Version}.nupkg", $"{id}.{feed.Version}.snupkg" }).Order(StringComparer.Ordinal)];
        string[] made = [.. Directory.GetFiles(feed.Directory).Select(Path.GetFileName).Order(StringComparer.Ordinal)!];
        Assert.Equal(expected, made);
        Assert.DoesNotContain("warning", feed.PackOutput, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Every_package_has_a_description_tags_a_readme_the_license_and_the_repository()
    {
        foreach (var id in Repository.PackageIds)
        {
            using var package = ZipFile.OpenRead(feed.PackagePath(id));
            var metadata = Nuspec(package, id);
            Assert.Equal(id, Value(metadata, "id"));
            Assert.Equal(feed.Version, Value(metadata, "version"));
            Assert.True(Value(metadata, "description").Length > 40, $"{id}: the description is missing or too short.");
            Assert.Contains("session", Value(metadata, "tags").Split(' '));
            Assert.Equal("MIT", Value(metadata, "license"));
            Assert.Equal("expression", (string?)metadata.Element(metadata.Name.Namespace + "license")!.Attribute("type"));

            Assert.Equal("README.md", Value(metadata, "readme"));
            var readme = Read(package, "README.md");
            Assert.StartsWith("# " + id + "\n", readme, StringComparison.Ordinal);
            Assert.Contains($"dotnet add package {id} --prerelease", readme, StringComparison.Ordinal);
            Assert.Contains("Documentation: ", readme, StringComparison.Ordinal);

            var repository = metadata.Element(metadata.Name.Namespace + "repository");
            Assert.NotNull(repository);
            Assert.Equal("git", (string?)repository.Attribute("type"));
            Assert.Matches("^[0-9a-f]{40}$", (string?)repository.Attribute("commit") ?? "");

            // A package built from this repository depends on its siblings at exactly this version.
            foreach (var dependency in Dependencies(metadata).Where(d => d.Id.StartsWith("ClusterSession", StringComparison.Ordinal)))
            {
                Assert.Contains(dependency.Id, Repository.PackageIds);
                Assert.Equal(feed.Version, dependency.Version);
            }
        }
    }

    [Fact]
    public void Every_symbol_package_holds_the_pdb_of_its_assembly()
    {
        foreach (var id in Repository.PackageIds)
        {
            using var symbols = ZipFile.OpenRead(feed.PackagePath(id, "snupkg"));
            Assert.Contains($"lib/net10.0/{id}.pdb", symbols.Entries.Select(e => e.FullName));
            using var package = ZipFile.OpenRead(feed.PackagePath(id));
            Assert.Contains($"lib/net10.0/{id}.dll", package.Entries.Select(e => e.FullName));
            Assert.Contains($"lib/net10.0/{id}.xml", package.Entries.Select(e => e.FullName));
        }
    }

    [Fact]
    public void The_tool_package_is_a_dotnet_tool_named_clustersession_with_its_readme()
    {
        using var package = ZipFile.OpenRead(feed.PackagePath(Repository.ToolPackageId));
        var metadata = Nuspec(package, Repository.ToolPackageId);
        Assert.Equal(feed.Version, Value(metadata, "version"));
        Assert.Contains("DotnetTool", (string?)metadata.Element(metadata.Name.Namespace + "packageTypes")?.Element(metadata.Name.Namespace + "packageType")?.Attribute("name") ?? "", StringComparison.Ordinal);
        Assert.Equal("MIT", Value(metadata, "license"));
        Assert.Contains("session", Value(metadata, "tags").Split(' '));
        var settings = XElement.Parse(Read(package, "tools/net10.0/any/DotnetToolSettings.xml"));
        var command = settings.Descendants("Command").Single();
        Assert.Equal("clustersession", (string?)command.Attribute("Name"));
        Assert.Equal("ClusterSession.Cli.dll", (string?)command.Attribute("EntryPoint"));
        Assert.StartsWith("# " + Repository.ToolPackageId + "\n", Read(package, "README.md"), StringComparison.Ordinal);
        Assert.Contains($"dotnet tool install --global {Repository.ToolPackageId} --prerelease", Read(package, "README.md"), StringComparison.Ordinal);
    }

    [Fact]
    public void The_tool_depends_on_the_core_and_the_stores_not_on_asp_net_core()
    {
        using var package = ZipFile.OpenRead(feed.PackagePath(Repository.ToolPackageId));
        var files = package.Entries.Select(e => e.FullName).ToList();
        Assert.Contains("tools/net10.0/any/ClusterSession.dll", files);
        Assert.Contains("tools/net10.0/any/ClusterSession.Redis.dll", files);
        Assert.Contains("tools/net10.0/any/ClusterSession.Postgres.dll", files);
        Assert.DoesNotContain("tools/net10.0/any/ClusterSession.AspNetCore.dll", files);
        Assert.DoesNotContain("Microsoft.AspNetCore.App", Read(package, "tools/net10.0/any/ClusterSession.Cli.runtimeconfig.json"), StringComparison.Ordinal);
    }

    [Fact]
    public void The_postgres_package_carries_schema_sql_as_content_and_still_embeds_it()
    {
        var schema = File.ReadAllText(Path.Combine(Repository.Root, "src/ClusterSession.Postgres/schema.sql"));
        using var package = ZipFile.OpenRead(feed.PackagePath("ClusterSession.Postgres"));
        Assert.Equal(schema, Read(package, "contentFiles/any/any/ClusterSession.Postgres/schema.sql"));
        var metadata = Nuspec(package, "ClusterSession.Postgres");
        var files = metadata.Element(metadata.Name.Namespace + "contentFiles")!.Elements(metadata.Name.Namespace + "files").Single();
        Assert.Equal("None", (string?)files.Attribute("buildAction")); // shown to the consuming project, never compiled or copied

        using var assembly = new MemoryStream();
        using (var dll = package.GetEntry("lib/net10.0/ClusterSession.Postgres.dll")!.Open())
        {
            dll.CopyTo(assembly);
        }

        assembly.Position = 0;
        using var pe = new PEReader(assembly);
        var reader = pe.GetMetadataReader();
        Assert.Contains("ClusterSession.Postgres.schema.sql", reader.ManifestResources.Select(h => reader.GetString(reader.GetManifestResource(h).Name)));
    }

    [Fact]
    public void The_testing_package_depends_only_on_packages_a_third_party_can_restore()
    {
        using var package = ZipFile.OpenRead(feed.PackagePath("ClusterSession.Testing"));
        var dependencies = Dependencies(Nuspec(package, "ClusterSession.Testing")).Select(d => d.Id).Order(StringComparer.Ordinal);
        // The core package from this feed, and public packages: the parts of xunit a library of tests needs, the fake clock.
        Assert.Equal(["ClusterSession", "Microsoft.Extensions.Logging.Abstractions", "Microsoft.Extensions.TimeProvider.Testing", "xunit.assert", "xunit.extensibility.core"], dependencies);
        Assert.Contains("lib/net10.0/ClusterSession.Testing.dll", package.Entries.Select(e => e.FullName));
        Assert.DoesNotContain(package.Entries, e => e.FullName.EndsWith(".runtimeconfig.json", StringComparison.Ordinal));
    }

    private static XElement Nuspec(ZipArchive package, string id)
    {
        var document = XDocument.Parse(Read(package, id + ".nuspec"));
        return document.Root!.Element(document.Root.Name.Namespace + "metadata")!;
    }

    private static string Value(XElement metadata, string name) =>
        metadata.Element(metadata.Name.Namespace + name)?.Value ?? throw new Xunit.Sdk.XunitException($"The nuspec has no <{name}>.");

    private static IEnumerable<(string Id, string Version)> Dependencies(XElement metadata) =>
        metadata.Descendants(metadata.Name.Namespace + "dependency").Select(d => ((string)d.Attribute("id")!, (string)d.Attribute("version")!));

    private static string Read(ZipArchive package, string path)
    {
        var entry = package.GetEntry(path) ?? throw new Xunit.Sdk.XunitException($"The package has no {path}.");
        using var reader = new StreamReader(entry.Open());
        return reader.ReadToEnd();
    }
}
