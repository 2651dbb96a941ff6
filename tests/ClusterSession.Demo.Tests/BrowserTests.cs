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
    public async Task Logged_in_user_stays_logged_in_while_refreshes_move_between_nodes_then_logs_out()
    {
        // Another device of the same user, so that the page lists a session with a revoke button.
        await using var phone = await _browser.NewContextAsync(new BrowserNewContextOptions { UserAgent = "Phone (ClusterDemo browser test)" });
        var phonePage = await phone.NewPageAsync();
        await LogInAsync(phonePage, "carol");

        await using var laptop = await _browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 900, Height = 1000 } });
        var page = await laptop.NewPageAsync();
        await LogInAsync(page, "carol");

        var servedBy = new HashSet<string> { await page.Locator("#served-by").InnerTextAsync() };
        for (var refresh = 0; refresh < 12 && servedBy.Count < 2; refresh++)
        {
            await page.ReloadAsync();
            Assert.Equal("carol", await page.Locator("#user-name").InnerTextAsync());
            servedBy.Add(await page.Locator("#served-by").InnerTextAsync());
        }

        Assert.True(servedBy.Count >= 2, $"refreshing through the load balancer only ever reached {string.Join(", ", servedBy)}");

        await page.Locator("#cart-item").FillAsync("espresso beans");
        await page.GetByRole(AriaRole.Button, new() { Name = "Add to cart" }).ClickAsync();
        await page.Locator("#cart li").First.WaitForAsync();
        await page.Locator("#attribute-name").FillAsync("theme");
        await page.Locator("#attribute-value").FillAsync("dark");
        await page.GetByRole(AriaRole.Button, new() { Name = "Set" }).ClickAsync();
        await page.Locator("#attributes th", new() { HasText = "theme" }).WaitForAsync();
        Assert.Equal("carol", await page.Locator("#user-name").InnerTextAsync());
        Assert.Equal(1, await page.Locator("button.revoke").CountAsync());

        var screenshots = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "screenshots"));
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(screenshots.FullName, "clusterdemo.png"), FullPage = true });

        await page.Locator("#logout-button").ClickAsync();
        await page.Locator("#login-form").WaitForAsync();
        await page.ReloadAsync();
        Assert.Equal(1, await page.Locator("#login-form").CountAsync());
        Assert.Equal(0, await page.Locator("#user-name").CountAsync());

        // Logging out one device leaves the other signed in.
        await phonePage.ReloadAsync();
        Assert.Equal("carol", await phonePage.Locator("#user-name").InnerTextAsync());
    }

    private async Task LogInAsync(IPage page, string user)
    {
        await page.GotoAsync(_demo.LoadBalancer.ToString());
        await page.Locator("#user").FillAsync(user);
        await page.Locator("#password").FillAsync("demo");
        await page.Locator("#login-button").ClickAsync();
        try
        {
            await page.Locator("#user-name").WaitForAsync(new() { Timeout = 30_000 });
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"Login on the page did not finish. Page now:\n{await page.ContentAsync()}", ex);
        }

        Assert.Equal(user, await page.Locator("#user-name").InnerTextAsync());
    }
}
