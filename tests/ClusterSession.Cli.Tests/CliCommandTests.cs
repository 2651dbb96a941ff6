using System.Net;
using System.Text.Json;
using ClusterSession.AspNetCore;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterSession.Cli.Tests;

/// <summary>
/// Every command of <c>clustersession</c> against a real store holding sessions that a real Kestrel app made through
/// cookie sign-in: alice on a Windows laptop (Firefox, with a cart in her session) and an iPhone, bob on Android.
/// The tool runs in-process through <see cref="CliApp.RunAsync"/> (what <c>Main</c> calls) with captured output, and no
/// output, in either format, may contain a session id, a cookie or an attribute value.
/// </summary>
public abstract class CliCommandTests : IAsyncLifetime
{
    private const string CartValue = "secret-cart-7f3a91";

    private readonly List<string> _outputs = [];
    private ISessionStore? _store;
    private WebApp? _app;
    private Browser? _laptop;
    private Browser? _phone;
    private Browser? _bob;
    private string[] _ids = [];
    private string[] _handles = [];

    /// <summary>The store options that name this test's own key prefix or tables, as the tool's arguments.</summary>
    protected abstract string[] StoreArguments { get; }

    /// <summary>Arguments naming a store nobody listens for.</summary>
    protected abstract string[] UnreachableStoreArguments { get; }

    private ISessionStore Store => _store!;

    private Browser Laptop => _laptop!;

    private Browser Phone => _phone!;

    public async Task InitializeAsync()
    {
        _store = await CreateStoreAsync();
        _app = await WebApp.StartAsync(_store);
        _laptop = new Browser(_app.Address, Browser.Firefox);
        _phone = new Browser(_app.Address, Browser.SafariIPhone);
        _bob = new Browser(_app.Address, Browser.ChromeAndroid);
        Assert.Equal(HttpStatusCode.OK, await Laptop.PostAsync("/login/alice"));
        Assert.Equal(HttpStatusCode.OK, await Laptop.PostAsync("/cart/" + CartValue));
        Assert.Equal(HttpStatusCode.OK, await Phone.PostAsync("/login/alice"));
        Assert.Equal(HttpStatusCode.OK, await _bob.PostAsync("/login/bob"));
        // A store keeps no ids (sessions found by user carry handles only); a store that still returns them has them checked too.
        var sessions = (await Store.FindByPrincipalAsync("alice")).Concat(await Store.FindByPrincipalAsync("bob")).ToList();
        Assert.Equal(3, sessions.Count);
        _handles = [.. sessions.Select(static s => s.Handle)];
        _ids = [.. sessions.Where(static s => s.Id is not null).Select(static s => s.Id!)];
    }

    public async Task DisposeAsync()
    {
        // Every test's outputs, checked once: never an id, a cookie or a value.
        foreach (var output in _outputs)
        {
            foreach (var secret in Laptop.CookieValues.Concat(Phone.CookieValues).Append(CartValue))
            {
                Assert.DoesNotContain(secret, output, StringComparison.Ordinal);
            }
        }

        _laptop?.Dispose();
        _phone?.Dispose();
        _bob?.Dispose();
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }

        if (_store is IAsyncDisposable disposable)
        {
            await disposable.DisposeAsync();
        }
    }

    [Fact]
    public async Task Count_counts_every_live_session_or_one_users_sessions()
    {
        Assert.Equal((0, "3"), await RunAsync("count"));
        Assert.Equal(3, JsonSerializer.Deserialize<JsonElement>((await RunAsync("count", "--json")).Output).GetProperty("count").GetInt64());
        Assert.Equal(2, JsonSerializer.Deserialize<JsonElement>((await RunAsync("count", "--user", "alice", "--json")).Output).GetProperty("count").GetInt64());
        Assert.Equal((0, "0"), await RunAsync("count", "--user", "nobody"));
    }

    [Fact]
    public async Task List_shows_each_device_by_the_handle_the_session_manager_uses()
    {
        var (code, output) = await RunAsync("list", "--user", "alice", "--json");
        Assert.Equal(0, code);
        var rows = JsonSerializer.Deserialize<JsonElement>(output).EnumerateArray().ToList();
        var managed = await _app!.Services.GetRequiredService<ISessionManager>().ListAsync("alice");
        Assert.Equal(managed.Select(static s => s.Handle).Order(), rows.Select(static r => r.GetProperty("handle").GetString()!).Order());
        Assert.Equal(["Firefox on Windows", "Safari on iPhone"], rows.Select(static r => r.GetProperty("device").GetString()!).Order());
        Assert.All(rows, r => Assert.True(r.GetProperty("lastSeen").GetDateTimeOffset() >= r.GetProperty("created").GetDateTimeOffset()));

        var (humanCode, human) = await RunAsync("list", "--user", "alice");
        Assert.Equal(0, humanCode);
        Assert.StartsWith("HANDLE", human, StringComparison.Ordinal);
        Assert.Contains("Safari on iPhone", human, StringComparison.Ordinal);
        Assert.All(managed, s => Assert.Contains(s.Handle, human, StringComparison.Ordinal));
        Assert.EndsWith("2 session(s) of alice", human, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Show_prints_metadata_and_attribute_sizes_never_values()
    {
        var laptop = await SessionOfAsync("alice", Browser.Firefox);
        var handle = laptop.Handle;

        var (code, output) = await RunAsync("show", handle, "--user", "alice", "--json");
        Assert.Equal(0, code);
        var shown = JsonSerializer.Deserialize<JsonElement>(output);
        Assert.Equal(handle, shown.GetProperty("handle").GetString());
        Assert.Equal("alice", shown.GetProperty("user").GetString());
        Assert.Equal("Firefox on Windows", shown.GetProperty("device").GetString());
        Assert.Equal(laptop.Version, shown.GetProperty("version").GetInt64());
        var attributes = shown.GetProperty("attributes").EnumerateArray().ToDictionary(static a => a.GetProperty("name").GetString()!, static a => a.GetProperty("bytes").GetInt32());
        Assert.Equal(laptop.Attributes.ToDictionary(static a => a.Key, static a => a.Value.Length), attributes);
        Assert.Contains("cart", attributes.Keys);

        var (humanCode, human) = await RunAsync("show", handle, "--user", "alice");
        Assert.Equal(0, humanCode);
        Assert.Contains("cart", human, StringComparison.Ordinal);
        Assert.Contains($"{laptop.Attributes["cart"].Length} bytes", human, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Show_and_revoke_need_the_user_and_report_an_unknown_handle_as_not_found()
    {
        var handle = _handles[0];
        var (code, error) = await RunWithErrorAsync("show", handle);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--user", error, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.NotFound, (await RunAsync("show", "AAAAAAAAAAAAAAAAAAAAAA", "--user", "alice")).Code);
        Assert.Equal(ExitCodes.NotFound, (await RunAsync("revoke", "AAAAAAAAAAAAAAAAAAAAAA", "--user", "alice")).Code);
        Assert.Equal(3, await Store.CountAsync());
    }

    [Fact]
    public async Task Revoke_ends_one_session_and_its_cookie_is_rejected()
    {
        Assert.Equal(HttpStatusCode.OK, await Laptop.GetAsync("/me"));
        var laptop = await SessionOfAsync("alice", Browser.Firefox);

        var (code, output) = await RunAsync("revoke", laptop.Handle, "--user", "alice");

        Assert.Equal(0, code);
        Assert.StartsWith("Revoked session ", output, StringComparison.Ordinal);
        Assert.DoesNotContain(laptop.Handle, (await Store.FindByPrincipalAsync("alice")).Select(static s => s.Handle));
        Assert.Equal(HttpStatusCode.Unauthorized, await Laptop.GetAsync("/me"));
        Assert.Equal(HttpStatusCode.OK, await Phone.GetAsync("/me"));
    }

    [Fact]
    public async Task Revoke_user_ends_every_session_of_the_user_and_their_cookies_are_rejected()
    {
        var alice = await Store.FindByPrincipalAsync("alice");
        Assert.Equal(HttpStatusCode.OK, await Phone.GetAsync("/me"));

        Assert.Equal((0, "Revoked 2 session(s) of alice."), await RunAsync("revoke-user", "alice"));

        Assert.Empty(await Store.FindByPrincipalAsync("alice"));
        Assert.Equal(HttpStatusCode.Unauthorized, await Laptop.GetAsync("/me"));
        Assert.Equal(HttpStatusCode.Unauthorized, await Phone.GetAsync("/me"));
        Assert.Equal(HttpStatusCode.OK, await _bob!.GetAsync("/me"));
        Assert.Equal((0, "0"), await RunAsync("count", "--user", "alice"));
        Assert.Equal(ExitCodes.NotFound, (await RunAsync("revoke-user", "alice", "--json")).Code);
    }

    [Fact]
    public async Task Stats_measures_bytes_and_time_to_live_from_a_sample()
    {
        var (code, output) = await RunAsync("stats", "--json");
        Assert.Equal(0, code);
        var stats = JsonSerializer.Deserialize<JsonElement>(output);
        Assert.Equal(3, stats.GetProperty("sessions").GetInt64());
        Assert.Equal(3, stats.GetProperty("sampled").GetInt32());
        Assert.InRange(stats.GetProperty("bytesPerSessionMean").GetInt64(), 50, 100_000);
        Assert.True(stats.GetProperty("bytesPerSessionP95").GetInt64() >= stats.GetProperty("bytesPerSessionMedian").GetInt64());
        var buckets = stats.GetProperty("timeToLive").EnumerateObject().ToDictionary(static p => p.Name, static p => p.Value.GetInt32());
        Assert.Equal(3, buckets.Values.Sum());
        Assert.Equal(3, buckets["15-60m"]); // the default idle timeout is 20 minutes and the sessions are fresh
        Assert.Contains("\"<1m\":0", output, StringComparison.Ordinal);

        var (humanCode, human) = await RunAsync("stats", "--sample", "2");
        Assert.Equal(0, humanCode);
        Assert.Contains("sampled             2 session(s)", human, StringComparison.Ordinal);
        Assert.Contains("bytes per session", human, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_full_count_over_max_scan_is_refused_without_yes_and_runs_with_it()
    {
        var (code, error) = await RunWithErrorAsync("count", "--max-scan", "0");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--yes", error, StringComparison.Ordinal);
        Assert.Equal((0, "3"), await RunAsync("count", "--max-scan", "0", "--yes"));

        var (statsCode, stats) = await RunAsync("stats", "--max-scan", "0");
        Assert.Equal(0, statsCode);
        Assert.Contains("not counted", stats, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("count")]
    [InlineData("count", "--user", "alice")]
    [InlineData("stats")]
    [InlineData("revoke-user", "alice")]
    public async Task An_unreachable_store_exits_with_3_never_with_an_empty_answer(params string[] command)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await CliApp.RunAsync([.. command, .. UnreachableStoreArguments], output, error, CancellationToken.None);
        Assert.Equal(ExitCodes.StoreUnavailable, code);
        Assert.Equal("", output.ToString());
        Assert.Contains("unavailable", error.ToString(), StringComparison.Ordinal);
    }

    protected abstract Task<ISessionStore> CreateStoreAsync();

    private async Task<SessionSnapshot> SessionOfAsync(string user, string userAgent)
        => (await Store.FindByPrincipalAsync(user)).Single(s => System.Text.Encoding.UTF8.GetString(s.Attributes["__cs.ua"]) == userAgent);

    private async Task<(int Code, string Output)> RunAsync(params string[] args)
    {
        var (code, output, _) = await RunCoreAsync(args);
        return (code, output);
    }

    private async Task<(int Code, string Error)> RunWithErrorAsync(params string[] args)
    {
        var (code, _, error) = await RunCoreAsync(args);
        return (code, error);
    }

    private async Task<(int Code, string Output, string Error)> RunCoreAsync(string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await CliApp.RunAsync([.. args, .. StoreArguments], output, error, CancellationToken.None);
        _outputs.Add(output.ToString());
        _outputs.Add(error.ToString());
        return (code, output.ToString().TrimEnd(), error.ToString());
    }
}
