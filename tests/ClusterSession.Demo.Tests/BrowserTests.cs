using Microsoft.Playwright;

namespace ClusterSession.Demo.Tests;

/// <summary>A person with a browser: log in on the page, refresh across nodes, log out.</summary>
public sealed class BrowserTests : IAsyncLifetime
{
    private DemoProcess _demo = null!;
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;

    public async Task InitializeAsync()
    {
        _demo = await DemoProcess.StartAsync(nodes: 3);
        (_playwright, _browser) = await Browser.LaunchAsync();
    }

    public async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
        await _demo.DisposeAsync();
    }

    [Fact]
    public async Task Page_loads_in_chromium_and_names_its_node()
    {
        var page = await _browser.NewPageAsync();
        await page.GotoAsync(_demo.LoadBalancer.ToString());
        var node = await page.Locator("#served-by").InnerTextAsync();
        Assert.StartsWith("node-", node, StringComparison.Ordinal);
    }
}
