using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using ClusterSession.Testing.Servers;

namespace ClusterSession.MultiHost.Tests;

/// <summary>
/// The test app started as a separate OS process, as a second machine or container would run it: its own
/// HOME (so its own default Data Protection key folder), its own content root, its own 127.0.0.1 port.
/// Ready once it answers /health; disposing kills it and deletes its directories.
/// </summary>
public sealed class AppHost : IAsyncDisposable
{
    private static readonly TimeSpan StartDeadline = TimeSpan.FromSeconds(60);
    private static readonly HttpClient Probe = new() { Timeout = TimeSpan.FromSeconds(2) };
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private AppHost(Process process, Uri address, string root)
    {
        _process = process;
        Address = address;
        Root = root;
    }

    public Uri Address { get; }

    /// <summary>The host's own directory: HOME is <c>home</c> below it, the content root <c>content</c>.</summary>
    public string Root { get; }

    public string Home => Path.Combine(Root, "home");

    public static string TestAppDll { get; } = typeof(AppHost).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "TestAppDll").Value!;

    /// <summary>The app of the adoption tests (tests/ClusterSession.Adoption.TestApp).</summary>
    public static string AdoptionAppDll { get; } = typeof(AppHost).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "AdoptionAppDll").Value!;

    /// <summary>Starts <paramref name="count"/> hosts in parallel with the same arguments (the same app, configured alike).</summary>
    public static async Task<AppHost[]> StartManyAsync(int count, Func<AppHost.Paths, string[]> arguments)
    {
        var starting = Enumerable.Range(0, count).Select(_ => StartAsync(arguments)).ToArray();
        try
        {
            return await Task.WhenAll(starting);
        }
        catch
        {
            foreach (var host in starting.Where(t => t.IsCompletedSuccessfully))
            {
                await host.Result.DisposeAsync();
            }

            throw;
        }
    }

    /// <summary>Debian's libfaketime (package faketime, which ./test.sh installs).</summary>
    private static readonly Lazy<string> LibFakeTime = new(static () =>
        Directory.EnumerateDirectories("/usr/lib", "*-linux-gnu*")
            .Select(static d => Path.Combine(d, "faketime", "libfaketime.so.1"))
            .FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException("libfaketime.so.1 not found under /usr/lib: install Debian's faketime package (./test.sh does)."));

    /// <summary>Starts one host; with <paramref name="clockOffset"/> (faketime's syntax, e.g. "+25m") its clock is that far off.</summary>
    /// <param name="arguments">The app's arguments besides --urls and --contentRoot.</param>
    /// <param name="clockOffset">faketime's offset, or null.</param>
    /// <param name="appDll">The app to start; default <see cref="TestAppDll"/>.</param>
    public static async Task<AppHost> StartAsync(Func<AppHost.Paths, string[]> arguments, string? clockOffset = null, string? appDll = null)
    {
        var root = Path.Combine(Path.GetTempPath(), "cs-multihost-" + Guid.NewGuid().ToString("N")[..12]);
        var paths = new Paths(Path.Combine(root, "home"), Path.Combine(root, "content"));
        Directory.CreateDirectory(paths.Home);
        Directory.CreateDirectory(paths.ContentRoot);
        var port = ServerProcess.FreePort();
        var address = new Uri(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}"));

        // libfaketime (Debian's faketime package) shifts the process's clocks, as a node whose NTP is off would see them.
        // Preloaded directly rather than through the `faketime` wrapper: the wrapper keeps a named semaphore per pid in
        // /dev/shm that outlives a killed process and makes a later wrapper with a reused pid fail ("sem_open: File exists").
        // (FAKETIME_DONT_FAKE_MONOTONIC=1 made every Redis call of the process time out: left at its default.)
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = paths.ContentRoot,
        };
        if (clockOffset is not null)
        {
            start.Environment["LD_PRELOAD"] = LibFakeTime.Value;
            start.Environment["FAKETIME"] = clockOffset;
        }

        string[] all = [appDll ?? TestAppDll, "--urls", address.ToString().TrimEnd('/'), "--contentRoot", paths.ContentRoot, .. arguments(paths)];
        foreach (var argument in all)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["HOME"] = paths.Home;
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment.Remove("ASPNETCORE_ENVIRONMENT");
        start.Environment.Remove("DOTNET_ENVIRONMENT");
        start.Environment.Remove("ASPNETCORE_URLS");
        start.Environment.Remove("ASPNETCORE_CONTENTROOT");

        var host = new AppHost(Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start."), address, root);
        host._process.OutputDataReceived += (_, e) => host.Append(e.Data);
        host._process.ErrorDataReceived += (_, e) => host.Append(e.Data);
        host._process.BeginOutputReadLine();
        host._process.BeginErrorReadLine();
        try
        {
            await ServerProcess.UntilAsync(host.IsReadyAsync, StartDeadline, $"the test app answers on {address}");
        }
        catch (Exception ex)
        {
            var output = host.Output;
            await host.DisposeAsync();
            throw new InvalidOperationException($"The test app did not start ({ex.Message}). Output:\n{output}", ex);
        }

        return host;
    }

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

    public ValueTask DisposeAsync()
    {
        ServerProcess.Stop(_process);
        RemoveLeakedFakeTimeState();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// libfaketime keeps a shared-memory file (and a semaphore) per process in /dev/shm, named by pid, and a killed
    /// process leaves them behind; a later faked process that gets the same pid would then fail to start. Removes
    /// those of processes that no longer run.
    /// </summary>
    private static void RemoveLeakedFakeTimeState()
    {
        if (!Directory.Exists("/dev/shm"))
        {
            return;
        }

        foreach (var file in Directory.EnumerateFiles("/dev/shm", "*faketime_*"))
        {
            var name = Path.GetFileName(file);
            var pid = name[(name.LastIndexOf('_') + 1)..];
            if (int.TryParse(pid, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && !Directory.Exists("/proc/" + id.ToString(CultureInfo.InvariantCulture)))
            {
                try
                {
                    File.Delete(file);
                }
                catch (IOException)
                {
                }
                catch (UnauthorizedAccessException)
                {
                }
            }
        }
    }

    private async Task<bool> IsReadyAsync()
    {
        if (_process.HasExited)
        {
            throw new InvalidOperationException($"The test app exited with code {_process.ExitCode}.");
        }

        try
        {
            using var response = await Probe.GetAsync(new Uri(Address, "/health"));
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (TaskCanceledException)
        {
            return false;
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    /// <summary>The directories of one host, for arguments that name them.</summary>
    public sealed record Paths(string Home, string ContentRoot);
}
