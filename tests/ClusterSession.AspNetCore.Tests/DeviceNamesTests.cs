using System.Net;
using System.Text.Json;
using ClusterSession.AspNetCore.Management;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>The readable device of a session, from real User-Agents of common browsers, and the opt-in client address.</summary>
public sealed class DeviceNamesTests
{
    [Theory]
    [InlineData("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Windows")]
    [InlineData("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome on Windows")]
    [InlineData("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge on Windows")]
    [InlineData("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0", "Opera on Windows")]
    [InlineData("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", "Safari on macOS")]
    [InlineData("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome on macOS")]
    [InlineData("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", "Safari on iPhone")]
    [InlineData("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1", "Chrome on iPhone")]
    [InlineData("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15", "Firefox on iPhone")]
    [InlineData("Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.7 Mobile/15E148 Safari/604.1", "Safari on iPad")]
    [InlineData("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome on Android")]
    [InlineData("Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/27.0 Chrome/125.0.0.0 Mobile Safari/537.36", "Samsung Internet on Android")]
    [InlineData("Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", "Firefox on Android")]
    [InlineData("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Linux")]
    [InlineData("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Ubuntu")]
    [InlineData("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome on ChromeOS")]
    [InlineData("Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko", "Internet Explorer on Windows")]
    [InlineData("curl/8.5.0", "curl")]
    [InlineData("Mozilla/5.0 (Linux; Android 14)", "Android")]
    [InlineData("TestBrowser/1.0", DeviceNames.Unknown)]
    [InlineData("", DeviceNames.Unknown)]
    [InlineData("   ", DeviceNames.Unknown)]
    [InlineData(null, DeviceNames.Unknown)]
    public void Common_user_agents_read_as_browser_on_system(string? userAgent, string expected)
        => Assert.Equal(expected, DeviceNames.Describe(userAgent));

    [Fact]
    public async Task Client_address_is_listed_only_when_the_application_opts_in()
    {
        await using var optedIn = await AppCluster.StartAsync(new ClusterSession.InMemory.InMemorySessionStore(), instances: 2, configure: o => o.RecordClientAddress = true);
        var browser = new Browser();
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsync(optedIn[0], "/login/erin")).Status);

        var listed = JsonSerializer.Deserialize<List<SessionInfo>>((await browser.GetAsync(optedIn[1], "/c/sessions")).Body, JsonSerializerOptions.Web)!;

        // Kestrel's RemoteIpAddress on the loopback: what UseForwardedHeaders would have rewritten behind a proxy.
        Assert.Equal("127.0.0.1", Assert.Single(listed).ClientAddress);
        Assert.Equal(DeviceNames.Unknown, listed[0].Device);
    }
}
