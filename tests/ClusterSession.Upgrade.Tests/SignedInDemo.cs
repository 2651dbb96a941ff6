using ClusterSession.Demo.Tests;

namespace ClusterSession.Upgrade.Tests;

/// <summary>
/// The current ClusterDemo (one node, a process of its own) on a store of the test's own, with the demo's three users
/// signed in with cookie authentication from one browser each: each wrote a value before signing in (an anonymous
/// session, whose id the sign-in renews) and two after. Then what a reader of the store sees: the dump, taken once.
/// Every process is stopped at the end, also after a failure.
/// </summary>
public sealed class SignedInDemo<TStore> : IAsyncLifetime
    where TStore : UpgradeStore, new()
{
    /// <summary>The demo's users (it has no others).</summary>
    public static readonly IReadOnlyList<string> Users = ["alice", "bob", "carol"];

    private readonly string _directory = Directory.CreateTempSubdirectory("cs-storereader-").FullName;
    private readonly List<Device> _devices = [];
    private readonly Lazy<Task<IReadOnlyList<StoredBytes>>> _dump;

    public SignedInDemo() => _dump = new(() => Store.DumpAsync());

    public TStore Store { get; } = new();

    public DemoProcess Demo { get; private set; } = null!;

    public Side Node => new("the demo's node-1", Demo.Node(1));

    /// <summary>Every store item: key names and values (Redis), rows (PostgreSQL), after the sign-ins.</summary>
    public Task<IReadOnlyList<StoredBytes>> Dump => _dump.Value;

    /// <summary>Every cookie value the browsers hold or held: each session id they were given, and the authentication cookie.</summary>
    public IReadOnlyList<HeldCookie> Cookies { get; private set; } = [];

    public IReadOnlyList<Victim> Victims => [.. _devices.Select(d => new Victim(d.User, [.. d.Written.Values]))];

    public async Task InitializeAsync()
    {
        try
        {
            await Store.StartAsync();
            Demo = await DemoProcess.StartBuildInHomeAsync(DemoProcess.DemoDll, Directory.CreateDirectory(Path.Combine(_directory, "demo")).FullName, 1, [.. Store.DemoArguments]);
            await SignInAsync();
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

            if (Demo is not null)
            {
                await Demo.DisposeAsync();
            }
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

    private async Task SignInAsync()
    {
        var traffic = new Traffic();
        foreach (var user in Users)
        {
            var device = new Device(_devices.Count + 1, user);
            _devices.Add(device);
            var secret = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray())[..8];
            await traffic.WriteAsync(device, Node, "draft", $"{user}'s draft {secret}, written before signing in");
            await traffic.LoginAsync(device, Node);
            await traffic.WriteAsync(device, Node, "note", $"{user}'s private note {secret}");
            await traffic.WriteAsync(device, Node, "address", $"{user}'s home address {secret}");
            await traffic.CheckAsync(device, Node);
        }

        if (!traffic.AllKept)
        {
            throw new InvalidOperationException($"The sign-ins did not work, so there is nothing to attack: {traffic.Summary}\nDemo output:\n{Demo.Output}");
        }

        var cookies = new List<HeldCookie>();
        foreach (var device in _devices)
        {
            // The session id before the sign-in and the one the sign-in renewed it to: each is a secret of its own.
            cookies.AddRange(device.SessionIds.Select(id => new HeldCookie(
                $"the {DemoClient.CookieName} cookie of {device.User} {(id == device.Client.SessionId ? "(the current session id)" : "(a session id before the sign-in)")}", id)));
            foreach (var pair in (device.Client.Cookie ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var (name, value) = (pair[..pair.IndexOf('=', StringComparison.Ordinal)], pair[(pair.IndexOf('=', StringComparison.Ordinal) + 1)..]);
                if (name != DemoClient.CookieName)
                {
                    cookies.Add(new($"the {name} cookie of {device.User}", value));
                }
            }
        }

        if (!cookies.Any(c => c.Owner.Contains(DemoClient.AuthCookieName, StringComparison.Ordinal)))
        {
            throw new InvalidOperationException($"No browser holds a {DemoClient.AuthCookieName} cookie after signing in: the sign-in is not what the test attacks.");
        }

        Cookies = cookies;
    }
}
