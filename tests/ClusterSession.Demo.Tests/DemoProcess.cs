using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace ClusterSession.Demo.Tests;

/// <summary>
/// The demo started as a user starts it: <c>dotnet ClusterDemo.dll --port P ...</c> as a child
/// process on real loopback ports, ready once it prints its ready line. Disposing stops it with
/// SIGTERM and, should that not end it in time, kills the process tree.
/// </summary>
public sealed class DemoProcess : IAsyncDisposable
{
    private static readonly TimeSpan StartDeadline = TimeSpan.FromSeconds(90);
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource<string> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private DemoProcess(Process process, int port, int nodes)
    {
        _process = process;
        Port = port;
        Nodes = nodes;
    }

    public int Port { get; }

    public int Nodes { get; }

    public Uri LoadBalancer => new($"http://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}");

    public Uri Node(int k) => new($"http://127.0.0.1:{(Port + k).ToString(CultureInfo.InvariantCulture)}");

    /// <summary>Everything the process printed so far, stdout and stderr interleaved.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static string DemoDll => Metadata("ClusterDemoDll");

    public static string RepositoryRoot => Metadata("RepositoryRoot");

    /// <summary>Starts the demo with <paramref name="extraArguments"/> on a free port range and waits for its ready line.</summary>
    public static Task<DemoProcess> StartAsync(int nodes = 3, params string[] extraArguments) => StartCoreAsync(home: null, nodes, extraArguments);

    /// <summary>
    /// As <see cref="StartAsync"/>, with <c>HOME</c> set to <paramref name="home"/>: a host of its own, as far as
    /// anything kept in the user's profile (such as a Data Protection key folder) is concerned.
    /// </summary>
    public static Task<DemoProcess> StartInHomeAsync(string home, int nodes, params string[] extraArguments) => StartCoreAsync(DemoDll, home, nodes, extraArguments);

    /// <summary>
    /// As <see cref="StartInHomeAsync"/>, running another build of the demo, <paramref name="demoDll"/> (such as the
    /// previous release's, which the upgrade tests run beside the current one).
    /// </summary>
    public static Task<DemoProcess> StartBuildInHomeAsync(string demoDll, string home, int nodes, params string[] extraArguments)
        => StartCoreAsync(demoDll, home, nodes, extraArguments);

    private static Task<DemoProcess> StartCoreAsync(string? home, int nodes, string[] extraArguments) => StartCoreAsync(DemoDll, home, nodes, extraArguments);

    private static async Task<DemoProcess> StartCoreAsync(string demoDll, string? home, int nodes, string[] extraArguments)
    {
        // The free range is free when it is chosen; an outgoing connection of another process on this machine can take
        // one of its ports (they are in the ephemeral range) before the demo binds. Then the demo says so and exits,
        // and a new range is tried, at most three times.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await StartOnFreePortsAsync(demoDll, home, nodes, extraArguments);
            }
            catch (InvalidOperationException ex) when (attempt < 3 && ex.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
            }
        }
    }

    private static async Task<DemoProcess> StartOnFreePortsAsync(string demoDll, string? home, int nodes, string[] extraArguments)
    {
        var port = FreePortRange(nodes + 1);
        string[] arguments = ["--port", port.ToString(CultureInfo.InvariantCulture), "--nodes", nodes.ToString(CultureInfo.InvariantCulture), .. extraArguments];
        var demo = new DemoProcess(Launch(demoDll, arguments, home), port, nodes);
        demo.CaptureOutput();
        using var deadline = new CancellationTokenSource(StartDeadline);
        try
        {
            await demo._ready.Task.WaitAsync(deadline.Token);
        }
        catch (Exception ex)
        {
            var output = demo.Output;
            await demo.DisposeAsync();
            throw new InvalidOperationException($"ClusterDemo did not print its ready line within {StartDeadline.TotalSeconds} s ({ex.Message}). Output:\n{output}", ex);
        }

        return demo;
    }

    /// <summary>
    /// Starts the demo on a free port range without waiting for its ready line (<see cref="Ready"/> completes with it),
    /// for tests of what the demo does before it is ready.
    /// </summary>
    public static DemoProcess Launch(int nodes, params string[] extraArguments)
    {
        var port = FreePortRange(nodes + 1);
        string[] arguments = ["--port", port.ToString(CultureInfo.InvariantCulture), "--nodes", nodes.ToString(CultureInfo.InvariantCulture), .. extraArguments];
        var demo = new DemoProcess(Launch(DemoDll, arguments), port, nodes);
        demo.CaptureOutput();
        return demo;
    }

    /// <summary>Completes with the ready line, once the demo prints it.</summary>
    public Task<string> Ready => _ready.Task;

    /// <summary>Runs the demo to completion (for argument errors) and returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Output)> RunToExitAsync(params string[] arguments)
    {
        using var process = Launch(DemoDll, arguments);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>Sends SIGTERM, as a service manager or <c>kill</c> would, and waits for the exit code.</summary>
    public async Task<int> TerminateAsync(TimeSpan deadline)
    {
        if (!_process.HasExited)
        {
            _ = NativeMethods.Kill(_process.Id, NativeMethods.SigTerm);
        }

        using var timeout = new CancellationTokenSource(deadline);
        await _process.WaitForExitAsync(timeout.Token);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                await TerminateAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            _process.Dispose();
        }
    }

    private static Process Launch(string demoDll, IEnumerable<string> arguments, string? home = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(demoDll);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DOTNET_NOLOGO"] = "1";
        if (home is not null)
        {
            // A host of its own: its profile and its temporary files (the runtime's diagnostics sockets among them).
            var temp = Directory.CreateDirectory(Path.Combine(home, "tmp")).FullName;
            start.Environment["HOME"] = home;
            start.Environment["TMPDIR"] = temp;
        }
        return Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
    }

    private void CaptureOutput()
    {
        void OnLine(string? line)
        {
            if (line is null)
            {
                _ready.TrySetException(new InvalidOperationException("ClusterDemo exited before it was ready."));
                return;
            }

            lock (_output)
            {
                _output.AppendLine(line);
            }

            if (line.StartsWith("ClusterDemo ready: ", StringComparison.Ordinal))
            {
                _ready.TrySetResult(line);
            }
        }

        _process.OutputDataReceived += (_, e) => OnLine(e.Data);
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_output)
                {
                    _output.AppendLine(e.Data);
                }
            }
        };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>A base port P such that P..P+count-1 are all free on 127.0.0.1 right now.</summary>
    private static int FreePortRange(int count)
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var candidate = Random.Shared.Next(20000, 60000);
            if (Enumerable.Range(candidate, count).All(IsFree))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"Found no {count} consecutive free loopback ports.");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static string Metadata(string key)
        => typeof(DemoProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;

    private static class NativeMethods
    {
        public const int SigTerm = 15;

        [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
        public static extern int Kill(int pid, int signal);
    }
}
