using System.Net;

namespace ClusterSession.Packaging.Tests;

/// <summary>samples/QuickStart started as a process (in-memory store), walked through as a browser would.</summary>
public sealed class QuickStartTests(QuickStartTests.QuickStartApp quickStart) : IClassFixture<QuickStartTests.QuickStartApp>
{
    [Fact]
    public async Task Sign_in_keeps_the_session_under_a_new_id_and_sign_out_ends_it_for_good()
    {
        using var browser = new QuickStartBrowser();
        var app = quickStart.App.Address;

        var anonymous = await browser.GetPageAsync(app);
        Assert.Null(anonymous.User);
        Assert.Equal(1, anonymous.Visits);
        var anonymousSessionId = browser.Cookie(".ClusterSession");
        Assert.NotNull(anonymousSessionId);

        Assert.Equal(HttpStatusCode.Redirect, await browser.PostFormAsync(app, "/sign-in", anonymous, ("name", "alice")));
        var signedIn = await browser.GetPageAsync(app);
        Assert.Equal("alice", signedIn.User);
        Assert.Equal(2, signedIn.Visits); // what the session held before the sign-in is still there ...
        Assert.NotEqual(anonymousSessionId, browser.Cookie(".ClusterSession")); // ... under a new id (no fixation)
        Assert.Equal(3, (await browser.GetPageAsync(app)).Visits);

        var cookiesBeforeSignOut = browser.CookieHeader;
        var page = await browser.GetPageAsync(app);
        Assert.Equal(HttpStatusCode.Redirect, await browser.PostFormAsync(app, "/sign-out", page));
        var signedOut = await browser.GetPageAsync(app);
        Assert.Null(signedOut.User);
        Assert.Equal(1, signedOut.Visits);

        // The cookies of the signed-in session are worth nothing now: the session and the ticket in it are gone.
        var replayed = await browser.GetPageAsync(app, cookiesBeforeSignOut);
        Assert.Null(replayed.User);
        Assert.Equal(1, replayed.Visits);
        AssertNoErrorLogged(quickStart.App);
    }

    [Fact]
    public async Task Sign_in_and_sign_out_without_the_pages_antiforgery_token_are_refused()
    {
        using var browser = new QuickStartBrowser();
        var app = quickStart.App.Address;
        var page = await browser.GetPageAsync(app);

        Assert.Equal(HttpStatusCode.BadRequest, await browser.PostFormAsync(app, "/sign-in", page: null, ("name", "mallory")));
        Assert.Null((await browser.GetPageAsync(app)).User);

        page = await browser.GetPageAsync(app);
        Assert.Equal(HttpStatusCode.Redirect, await browser.PostFormAsync(app, "/sign-in", page, ("name", "bob")));
        Assert.Equal(HttpStatusCode.BadRequest, await browser.PostFormAsync(app, "/sign-out", page: null));
        Assert.Equal("bob", (await browser.GetPageAsync(app)).User);
        AssertNoErrorLogged(quickStart.App);
    }

    internal static void AssertNoErrorLogged(AppProcess app)
    {
        var output = app.Output;
        Assert.DoesNotContain("fail:", output, StringComparison.Ordinal);
        Assert.DoesNotContain("crit:", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);
    }

    /// <summary>One quick start process for the class, with a home directory of its own.</summary>
    public sealed class QuickStartApp : IAsyncLifetime
    {
        private readonly string _home = Path.Combine(Path.GetTempPath(), "cs-quickstart-" + Guid.NewGuid().ToString("N"));

        internal AppProcess App { get; private set; } = null!;

        public async Task InitializeAsync() =>
            App = await AppProcess.StartAsync(Repository.QuickStartDll, Path.GetDirectoryName(Repository.QuickStartDll)!, _home);

        public async Task DisposeAsync()
        {
            if (App is not null)
            {
                await App.DisposeAsync();
            }

            Directory.Delete(_home, recursive: true);
        }
    }
}
