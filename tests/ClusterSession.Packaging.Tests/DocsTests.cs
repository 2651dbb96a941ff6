using System.Text.RegularExpressions;

namespace ClusterSession.Packaging.Tests;

/// <summary>The code the docs show is the code the tests run.</summary>
public sealed partial class DocsTests
{
    [Theory]
    [InlineData("README.md")]
    [InlineData("docs/getting-started.md")]
    public void The_doc_shows_the_quick_start_program_as_it_is(string doc)
    {
        var program = File.ReadAllText(Path.Combine(Repository.Root, "samples/QuickStart/Program.cs"));
        var blocks = CSharpBlock().Matches(File.ReadAllText(Path.Combine(Repository.Root, doc))).Select(m => m.Groups["code"].Value);
        Assert.Contains(program, blocks);
    }

    [GeneratedRegex("```csharp\n(?<code>.*?)```", RegexOptions.Singleline)]
    private static partial Regex CSharpBlock();
}
