using System.Runtime.InteropServices;
using ClusterSession.Bench;

// Ctrl+C and SIGTERM cancel the run; the harness's finally blocks stop the apps and redis-server.
using var cancellation = new CancellationTokenSource();
void Cancel(PosixSignalContext context)
{
    context.Cancel = true;
    cancellation.Cancel();
}

using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);

try
{
    return await BenchHarness.MainAsync(args, Console.Out, cancellation.Token);
}
catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
{
    Console.Error.WriteLine("cancelled");
    return 130;
}
