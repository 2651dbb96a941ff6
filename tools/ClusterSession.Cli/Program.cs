namespace ClusterSession.Cli;

/// <summary>The entry point of <c>clustersession</c>: <see cref="CliApp"/> does the work, on the console.</summary>
public static class Program
{
    /// <summary>Runs one command; the exit code is one of <see cref="ExitCodes"/>.</summary>
    public static Task<int> Main(string[] args) => CliApp.RunAsync(args, Console.Out, Console.Error, CancellationToken.None);
}
