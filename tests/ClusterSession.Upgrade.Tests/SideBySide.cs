using ClusterSession.Demo.Tests;

namespace ClusterSession.Upgrade.Tests;

/// <summary>
/// A rolling deploy on one real store: a release's ClusterDemo (one node; which release: the fixture type) started first, then the current
/// code's (two nodes) beside it, each a process with its own HOME and temporary directory and its own ports, both on the
/// store's one key (table) prefix. The mixed phase runs once, on first use; both phases' tests share its devices.
/// Every process is stopped at the end, also after a failure.
/// </summary>
public abstract class SideBySide<TStore> : IAsyncLifetime
    where TStore : UpgradeStore, new()
{
    /// <summary>Signed-in browsers in the mixed phase (the demo has three users; each device has its own session).</summary>
    public const int DeviceCount = 10;

    /// <summary>Attribute writes per device in the mixed phase, alternating sides.</summary>
    public const int WritesPerDevice = 3;

    /// <summary>Browsers signed in on the previous release before the deploy began: the store the current code joins is in use.</summary>
    public const int DevicesBeforeDeploy = 3;

    private static readonly string[] Users = ["alice", "bob", "carol"];
    private readonly string _directory = Directory.CreateTempSubdirectory("cs-upgrade-").FullName;
    private readonly Lazy<Task<Traffic>> _mixedPhase;
    private readonly Traffic _beforeDeploy = new();
    private readonly List<Device> _devices = [];
    private int _homes;

    private readonly string? _releaseTag;

    /// <param name="releaseTag">The release of eng/baseline-release.txt to run beside the current code; null: the previous release (its first line).</param>
    protected SideBySide(string? releaseTag)
    {
        _releaseTag = releaseTag;
        _mixedPhase = new(RunMixedPhaseAsync);
    }

    public TStore Store { get; } = new();

    public PreviousRelease Release { get; private set; } = null!;

    /// <summary>The previous release's demo; stopped by the upgrade phase.</summary>
    public DemoProcess Previous { get; private set; } = null!;

    public DemoProcess Current { get; private set; } = null!;

    public Side PreviousSide => new($"previous release {Release.Name}, node-1", Previous.Node(1));

    public Side CurrentSide(int node) => new($"current code, node-{node}", Current.Node(node));

    public IReadOnlyList<Device> Devices => _devices;

    /// <summary>The mixed phase's counts; run on first use.</summary>
    public Task<Traffic> MixedPhase => _mixedPhase.Value;

    /// <summary>A new empty directory for one process's HOME.</summary>
    public string NewHome(string name) => Directory.CreateDirectory(Path.Combine(_directory, $"{Interlocked.Increment(ref _homes):00}-{name}")).FullName;

    public Device NewDevice()
    {
        var device = new Device(_devices.Count + 1, Users[_devices.Count % Users.Length]);
        _devices.Add(device);
        return device;
    }

    /// <summary>Session id → "device N (user)", for every id any device has held.</summary>
    public IReadOnlyDictionary<string, string> SessionIdOwners()
        => _devices.SelectMany(d => d.SessionIds.Select(id => (id, d.ToString()))).ToDictionary(p => p.id, p => p.Item2, StringComparer.Ordinal);

    public async Task InitializeAsync()
    {
        try
        {
            Release = _releaseTag is null ? await PreviousRelease.GetAsync() : await PreviousRelease.GetAsync(_releaseTag);
            await Store.StartAsync();
            // The previous release runs first, as it did before the deploy; the current code joins it.
            Previous = await DemoProcess.StartBuildInHomeAsync(Release.DemoDll, NewHome("previous-demo"), 1, [.. Store.DemoArguments]);
            foreach (var device in Enumerable.Range(0, DevicesBeforeDeploy).Select(_ => NewDevice()).ToList())
            {
                await _beforeDeploy.LoginAsync(device, PreviousSide);
                await _beforeDeploy.WriteAsync(device, PreviousSide, "before-deploy", $"device {device.Number} wrote this before the deploy");
            }

            Current = await DemoProcess.StartBuildInHomeAsync(DemoProcess.DemoDll, NewHome("current-demo"), 2, [.. Store.DemoArguments]);
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        try
        {
            foreach (var device in _devices)
            {
                device.Dispose();
            }

            await StopAsync(Previous);
            await StopAsync(Current);
        }
        finally
        {
            try
            {
                await Store.DisposeAsync();
            }
            finally
            {
                Directory.Delete(_directory, recursive: true);
            }
        }
    }

    private static async Task StopAsync(DemoProcess? demo)
    {
        if (demo is not null)
        {
            await demo.DisposeAsync();
        }
    }

    /// <summary>
    /// Devices write an attribute on one side and sign in on the other, alternating, then each writes <see cref="WritesPerDevice"/> attributes, each write on the
    /// other side from the one before and read back at once on the other side; at the end every device is checked on
    /// both sides. The devices run side by side.
    /// </summary>
    private async Task<Traffic> RunMixedPhaseAsync()
    {
        var traffic = _beforeDeploy;
        Side[] sides = [PreviousSide, CurrentSide(1)];
        var signedInBefore = _devices.ToList();
        var devices = Enumerable.Range(0, DeviceCount).Select(_ => NewDevice()).ToList();
        await Task.WhenAll(signedInBefore.Select(async device =>
        {
            // Signed in before the deploy: still signed in, with its value, on both releases; a write on the current one is seen on the previous.
            await traffic.CheckAsync(device, sides[1]);
            await traffic.WriteAsync(device, sides[1], "after-deploy", $"device {device.Number} wrote this on the current release");
            await traffic.CheckAsync(device, sides[0]);
        }));
        await Task.WhenAll(devices.Select(async (device, i) =>
        {
            // An anonymous session made by one release, signed in (its id renewed, the value kept) by the other.
            await traffic.WriteAsync(device, sides[(i + 1) % 2], "before-login", $"device {device.Number} wrote this before signing in");
            await traffic.LoginAsync(device, sides[i % 2]);
            for (var k = 0; k < WritesPerDevice; k++)
            {
                var writer = sides[(i + k + 1) % 2];
                var reader = sides[(i + k) % 2];
                await traffic.WriteAsync(device, writer, $"a{k}", $"device {device.Number} wrote a{k} on the {(writer == sides[0] ? "previous" : "current")} release");
                await traffic.CheckValuesAsync(device, reader);
            }

            foreach (var side in sides)
            {
                await traffic.CheckAsync(device, side);
            }
        }));
        return traffic;
    }
}

/// <summary>The previous release (the first line of eng/baseline-release.txt) beside the current code: a rolling deploy.</summary>
public sealed class PreviousReleaseSideBySide<TStore>() : SideBySide<TStore>(releaseTag: null)
    where TStore : UpgradeStore, new();

/// <summary>
/// v0.2.0-preview.1, the last release on layout 2, beside the current code: the deploy from it, then `clustersession upgrade`
/// (the current code still reads, writes and moves layout 2).
/// </summary>
public sealed class LayoutTwoSideBySide<TStore>() : SideBySide<TStore>(LayoutTwoRelease)
    where TStore : UpgradeStore, new()
{
    /// <summary>The tag of the last release that wrote layout 2.</summary>
    public const string LayoutTwoRelease = "v0.2.0-preview.1";
}
