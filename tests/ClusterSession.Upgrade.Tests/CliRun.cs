using System.Diagnostics;

namespace ClusterSession.Upgrade.Tests;

/// <summary>One run of <c>clustersession</c> as an operator runs it: <c>dotnet ClusterSession.Cli.dll ...</c>, a process of its own.</summary>
public sealed record CliRun(string CommandLine, int ExitCode, string Output, string Error, TimeSpan Took)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    /// <summary>Runs <paramref name="cliDll"/> with <paramref name="arguments"/>, with <c>HOME</c> and <c>TMPDIR</c> under <paramref name="home"/>; killed at the deadline.</summary>
    public static async Task<CliRun> RunAsync(string cliDll, string home, params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(cliDll);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["HOME"] = home;
        start.Environment["TMPDIR"] = Directory.CreateDirectory(Path.Combine(home, "tmp")).FullName;
        var stopwatch = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        try
        {
            using var deadline = new CancellationTokenSource(Deadline);
            await process.WaitForExitAsync(deadline.Token);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }

        return new CliRun($"clustersession {string.Join(' ', arguments)}", process.ExitCode, await output, await error, stopwatch.Elapsed);
    }

    /// <summary>What an operator would have seen: the command line, the exit code and everything printed.</summary>
    public override string ToString()
        => $"$ {CommandLine}\n[exit code {ExitCode}, {Took.TotalSeconds:0.0} s]\n--- stdout:\n{Output.TrimEnd()}\n--- stderr:\n{Error.TrimEnd()}";
}
