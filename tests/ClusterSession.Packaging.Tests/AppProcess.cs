using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace ClusterSession.Packaging.Tests;

/// <summary>
/// An ASP.NET Core app started as a user starts it, <c>dotnet App.dll --urls http://127.0.0.1:0</c>, in its own
/// content root and home directory (as on a host of its own); ready once it logs the port Kestrel chose.
/// Disposing kills it.
/// </summary>
internal sealed partial class AppProcess : IAsyncDisposable
{
    private static readonly TimeSpan StartDeadline = TimeSpan.FromSeconds(90);
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private AppProcess(Process process) => _process = process;

    /// <summary>The address Kestrel listens on, e.g. http://127.0.0.1:41234/.</summary>
    public Uri Address { get; private set; } = null!;

    /// <summary>Everything the app printed so far, stdout and stderr interleaved.</summary>
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

    /// <summary>Starts <paramref name="dll"/> from <paramref name="contentRoot"/> with HOME set to <paramref name="home"/>.</summary>
    public static async Task<AppProcess> StartAsync(string dll, string contentRoot, string home, params string[] arguments)
    {
        Directory.CreateDirectory(home);
        var info = DotNet.StartInfo(contentRoot, [dll, "--urls", "http://127.0.0.1:0", .. arguments]);
        info.Environment["HOME"] = home;
        var app = new AppProcess(Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start."));
        app._process.OutputDataReceived += (_, e) => app.OnLine(e.Data, isStdout: true);
        app._process.ErrorDataReceived += (_, e) => app.OnLine(e.Data, isStdout: false);
        app._process.BeginOutputReadLine();
        app._process.BeginErrorReadLine();
        using var deadline = new CancellationTokenSource(StartDeadline);
        try
        {
            app.Address = await app._listening.Task.WaitAsync(deadline.Token);
        }
        catch (Exception ex)
        {
            await app.DisposeAsync();
            throw new InvalidOperationException($"{Path.GetFileName(dll)} did not log its address within {StartDeadline.TotalSeconds:0} s ({ex.Message}). Output:\n{app.Output}", ex);
        }

        return app;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _process.WaitForExitAsync(deadline.Token);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException)
        {
            // Gone already, or stuck in the kernel: nothing more a test can do.
        }
        finally
        {
            _process.Dispose();
        }
    }

    private void OnLine(string? line, bool isStdout)
    {
        if (line is null)
        {
            if (isStdout)
            {
                _listening.TrySetException(new InvalidOperationException("the app exited before it listened"));
            }

            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }

        var match = ListeningLine().Match(line);
        if (match.Success)
        {
            _listening.TrySetResult(new Uri(match.Groups["address"].Value + "/"));
        }
    }

    [GeneratedRegex(@"Now listening on: (?<address>http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningLine();
}
