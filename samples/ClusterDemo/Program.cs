using System.Runtime.InteropServices;
using ClusterDemo;

var arguments = DemoArguments.Parse(args, out var error);
if (arguments is null)
{
    Console.Error.WriteLine($"ClusterDemo: {error}");
    Console.Error.WriteLine();
    Console.Error.WriteLine(DemoArguments.Usage);
    return 2;
}

if (arguments.ShowHelp)
{
    Console.WriteLine(DemoArguments.Usage);
    return 0;
}

using var stopping = new CancellationTokenSource();
void Stop(PosixSignalContext context)
{
    context.Cancel = true;
    stopping.Cancel();
}

using var onInterrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var onTerminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);

DemoCluster cluster;
try
{
    cluster = await DemoCluster.StartAsync(arguments, Console.Out, stopping.Token);
}
catch (Exception ex) when (ex is IOException or InvalidOperationException or ArgumentException
    or System.Net.Sockets.SocketException or ClusterSession.SessionStoreUnavailableException
    or Microsoft.Extensions.Options.OptionsValidationException)
{
    // Typically a port in use, an unreachable --redis or --postgres, or a bad connection string: say so plainly, no stack trace.
    Console.Error.WriteLine($"ClusterDemo could not start: {ex.Message}");
    return 1;
}
catch (OperationCanceledException) when (stopping.IsCancellationRequested)
{
    // Ctrl+C while waiting for the store to take writes.
    Console.WriteLine("ClusterDemo stopped.");
    return 0;
}

await using (cluster)
{
    Console.WriteLine($"ClusterDemo ready: {arguments.LoadBalancerUrl}");
    Console.WriteLine("Open it in a browser (log in as alice, bob or carol, password demo). Ctrl+C stops.");
    try
    {
        await Task.Delay(Timeout.Infinite, stopping.Token);
    }
    catch (OperationCanceledException)
    {
    }

    Console.WriteLine("ClusterDemo stopping.");
}

Console.WriteLine("ClusterDemo stopped.");
return 0;
