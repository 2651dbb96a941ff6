using System.Net;
using System.Text.Json;
using ClusterSession.Demo.Tests;

namespace ClusterSession.Upgrade.Tests;

/// <summary>A node of one release, addressed directly (no load balancer picks the side).</summary>
public sealed record Side(string Name, Uri Address)
{
    public override string ToString() => Name;
}

/// <summary>One browser of a demo user: its cookies, what it wrote, and every session id it has held.</summary>
public sealed class Device(int number, string user) : IDisposable
{
    private readonly Dictionary<string, string> _written = new(StringComparer.Ordinal);
    private readonly HashSet<string> _sessionIds = new(StringComparer.Ordinal);

    public int Number { get; } = number;

    public string User { get; } = user;

    public DemoClient Client { get; } = new($"ClusterSession.Upgrade.Tests device-{number}");

    /// <summary>Attribute name → the value the device last wrote (acknowledged with 204).</summary>
    public IReadOnlyDictionary<string, string> Written => _written;

    /// <summary>Every <c>.ClusterSession</c> cookie value the device has held: the raw session ids.</summary>
    public IReadOnlyCollection<string> SessionIds => _sessionIds;

    public override string ToString() => $"device {Number} ({User})";

    public void Dispose() => Client.Dispose();

    internal void Wrote(string name, string value) => _written[name] = value;

    internal void NoteSessionId()
    {
        if (Client.SessionId is { } id)
        {
            _sessionIds.Add(id);
        }
    }
}

/// <summary>
/// Requests of devices to sides, counted: users kept signed in (every <c>/api/me</c> answered with the user), writes lost
/// (an acknowledged value missing or different in a later read of <c>/api/attributes</c>), requests failed (an unexpected
/// status, or no answer). A phase passes with total / 0 / 0. Thread-safe: devices run side by side.
/// </summary>
public sealed class Traffic
{
    private const int FailuresKept = 20;
    private readonly object _gate = new();
    private readonly HashSet<int> _users = [];
    private readonly HashSet<int> _signedOut = [];
    private readonly HashSet<(int Device, string Name)> _writesChecked = [];
    private readonly HashSet<(int Device, string Name)> _writesLost = [];
    private readonly List<string> _failures = [];
    private int _requests;
    private int _failed;

    public bool AllKept
    {
        get
        {
            lock (_gate)
            {
                return _signedOut.Count == 0 && _writesLost.Count == 0 && _failed == 0 && _requests > 0;
            }
        }
    }

    /// <summary>"users kept signed in / total; writes lost; requests failed", and the first failures.</summary>
    public string Summary
    {
        get
        {
            lock (_gate)
            {
                var line = $"{_users.Count - _signedOut.Count}/{_users.Count} users kept signed in; {_writesLost.Count} of {_writesChecked.Count} writes lost; {_failed} of {_requests} requests failed";
                return _failures.Count == 0 ? line : line + "\n  " + string.Join("\n  ", _failures);
            }
        }
    }

    public async Task LoginAsync(Device device, Side side)
    {
        using var response = await SendAsync(device, side, "POST /api/login", () => device.Client.LoginAsync(side.Address, device.User), HttpStatusCode.OK);
        if (response is null)
        {
            Count(device, signedOut: true, "no session after the login");
        }
    }

    public async Task WriteAsync(Device device, Side side, string name, string value)
    {
        using var response = await SendAsync(device, side, $"PUT /api/attributes/{name}", () => device.Client.PutAttributeAsync(side.Address, name, value), HttpStatusCode.NoContent);
        if (response is not null)
        {
            lock (_gate)
            {
                device.Wrote(name, value);
            }
        }
    }

    /// <summary>GET /api/me: the device is still signed in as its user.</summary>
    public async Task CheckSignedInAsync(Device device, Side side)
    {
        using var response = await SendAsync(device, side, "GET /api/me", () => device.Client.GetAsync(side.Address, "/api/me"), HttpStatusCode.OK);
        var user = response is null ? null : JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("user").GetString();
        if (user != device.User)
        {
            Count(device, signedOut: true, $"GET /api/me on {side}: signed in as {user ?? "nobody"}, not {device.User}");
        }
    }

    /// <summary>GET /api/attributes: every value the device wrote, as it wrote it.</summary>
    public async Task CheckValuesAsync(Device device, Side side)
    {
        using var response = await SendAsync(device, side, "GET /api/attributes", () => device.Client.GetAsync(side.Address, "/api/attributes"), HttpStatusCode.OK);
        var seen = response is null ? null : JsonSerializer.Deserialize<Dictionary<string, string>>(await response.Content.ReadAsStringAsync());
        lock (_gate)
        {
            foreach (var (name, value) in device.Written)
            {
                _writesChecked.Add((device.Number, name));
                if (seen is not null && (!seen.TryGetValue(name, out var read) || read != value))
                {
                    _writesLost.Add((device.Number, name));
                    Note($"{device} on {side}: attribute {name} read {(read is null ? "missing" : $"'{read}'")}, written '{value}'");
                }
            }
        }
    }

    /// <summary>Both checks.</summary>
    public async Task CheckAsync(Device device, Side side)
    {
        await CheckSignedInAsync(device, side);
        await CheckValuesAsync(device, side);
    }

    private async Task<HttpResponseMessage?> SendAsync(Device device, Side side, string what, Func<Task<HttpResponseMessage>> send, HttpStatusCode expected)
    {
        lock (_gate)
        {
            _users.Add(device.Number);
            _requests++;
        }

        HttpResponseMessage response;
        try
        {
            response = await send();
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            Count(device, signedOut: false, $"{what} on {side}: no answer ({ex.Message})");
            return null;
        }

        device.NoteSessionId();
        if (response.StatusCode != expected)
        {
            var body = await response.Content.ReadAsStringAsync();
            response.Dispose();
            Count(device, signedOut: false, $"{what} on {side}: {(int)response.StatusCode} {body}");
            return null;
        }

        return response;
    }

    private void Count(Device device, bool signedOut, string failure)
    {
        lock (_gate)
        {
            if (signedOut)
            {
                _signedOut.Add(device.Number);
            }
            else
            {
                _failed++;
            }

            Note($"{device}: {failure}");
        }
    }

    private void Note(string failure)
    {
        if (_failures.Count < FailuresKept)
        {
            _failures.Add(failure);
        }
    }
}
