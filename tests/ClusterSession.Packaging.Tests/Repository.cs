using System.Reflection;

namespace ClusterSession.Packaging.Tests;

/// <summary>Facts about the repository this test assembly was built from (recorded at build time).</summary>
internal static class Repository
{
    public static string Root => Metadata("RepositoryRoot");

    public static string Configuration => Metadata("Configuration");

    public static string QuickStartDll => Metadata("QuickStartDll");

    /// <summary>The version set once in Directory.Build.props, e.g. 0.2.0-preview.1.</summary>
    public static string Version => VersionSuffix.Length == 0 ? VersionPrefix : VersionPrefix + "-" + VersionSuffix;

    public static string VersionPrefix => Metadata("VersionPrefix");

    public static string VersionSuffix => Metadata("VersionSuffix");

    /// <summary>The five library packages <c>dotnet pack</c> makes.</summary>
    public static readonly string[] PackageIds =
        ["ClusterSession", "ClusterSession.AspNetCore", "ClusterSession.Redis", "ClusterSession.Postgres", "ClusterSession.Testing"];

    /// <summary>The one .NET tool package it makes besides them (tools/ClusterSession.Cli, command <c>clustersession</c>).</summary>
    public const string ToolPackageId = "ClusterSession.Cli";

    private static string Metadata(string key) =>
        typeof(Repository).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value
        ?? throw new InvalidOperationException($"Assembly metadata {key} is missing.");
}
