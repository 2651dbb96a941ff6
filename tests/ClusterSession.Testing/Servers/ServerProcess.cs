using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ClusterSession.Testing.Servers;

/// <summary>Helpers shared by the server fixtures: free loopback ports, processes, readiness probes.</summary>
public static class ServerProcess
{
    /// <summary>A free TCP port on 127.0.0.1; with <paramref name="alsoPlus10000"/>, port + 10000 is free too (Redis Cluster's bus port).</summary>
    public static int FreePort(bool alsoPlus10000 = false)
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var port = Probe(0);
            if (!alsoPlus10000 || (port + 10000 <= 65535 && IsFree(port + 10000)))
            {
                return port;
            }
        }

        throw new InvalidOperationException("No free loopback port pair (port, port + 10000) found in 100 attempts.");

        static int Probe(int port)
        {
            var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            var chosen = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            return chosen;
        }

        static bool IsFree(int port)
        {
            try
            {
                Probe(port);
                return true;
            }
            catch (SocketException)
            {
                return false;
            }
        }
    }

    /// <summary>Starts an executable with arguments, output captured (and drained) so it never blocks.</summary>
    public static Process Start(string fileName, IEnumerable<string> arguments, string? workingDirectory = null)
    {
        if (!File.Exists(fileName))
        {
            throw new InvalidOperationException($"{fileName} is missing: install the Debian package redis-server (./test.sh does it).");
        }

        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Runs a command to completion and returns its standard output; throws on a non-zero exit.</summary>
    public static async Task<string> RunAsync(string fileName, params string[] arguments)
    {
        var info = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{fileName} {string.Join(' ', arguments)} exited with {process.ExitCode}: {await error}{await output}");
        }

        return await output;
    }

    /// <summary>Sends one inline RESP command and returns the first reply line, or null when nothing answers.</summary>
    public static async Task<string?> TryCommandAsync(int port, string command)
    {
        try
        {
            using var client = new TcpClient();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await client.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
            var stream = client.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes(command + "\r\n"), timeout.Token);
            var buffer = new byte[4096];
            var read = await stream.ReadAsync(buffer, timeout.Token);
            return Encoding.ASCII.GetString(buffer, 0, read);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>Waits, up to a deadline, until <paramref name="condition"/> holds.</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0} s waiting until {what}.");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Kills a process and its children and waits for it to exit.</summary>
    public static void Stop(Process? process)
    {
        if (process is null)
        {
            return;
        }

        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        process.Dispose();
    }
}
