using ClusterSession.Bench;

// Ctrl+C cancels the run; the harness's finally blocks stop the apps and redis-server.
using var cancellation = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancellation.Cancel();
};

try
{
    return await BenchHarness.MainAsync(args, Console.Out, cancellation.Token);
}
catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
{
    Console.Error.WriteLine("cancelled");
    return 130;
}
