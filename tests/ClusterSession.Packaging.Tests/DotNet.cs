using System.Diagnostics;

namespace ClusterSession.Packaging.Tests;

/// <summary>Runs the <c>dotnet</c> CLI as a user would, in a clean environment, to completion within a deadline.</summary>
internal static class DotNet
{
    /// <summary>Runs <c>dotnet arguments...</c> in <paramref name="workingDirectory"/>; returns stdout and stderr, throws on a non-zero exit.</summary>
    public static async Task<string> RunAsync(string workingDirectory, TimeSpan deadline, params string[] arguments)
    {
        var info = StartInfo(workingDirectory, arguments);
        using var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(deadline);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"`dotnet {string.Join(' ', arguments)}` did not finish within {deadline.TotalSeconds:0} s:\n{await stdout}{await stderr}");
        }

        var output = await stdout + await stderr;
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"`dotnet {string.Join(' ', arguments)}` in {workingDirectory} exited with {process.ExitCode}:\n{output}");
        }

        return output;
    }

    /// <summary>
    /// A start of <c>dotnet</c> with output redirected and without the MSBuild variables that <c>dotnet test</c>
    /// passes down to the test host, so a child build or app sees the machine as a user's shell does.
    /// </summary>
    public static ProcessStartInfo StartInfo(string workingDirectory, IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            info.Environment.Remove(key);
        }

        info.Environment["DOTNET_NOLOGO"] = "1";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        return info;
    }
}
