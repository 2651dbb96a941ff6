using ClusterSession.AspNetCore;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>
/// An app moving from AddSession()/UseSession() to ClusterSession changes its two registration lines and
/// nothing else: the same endpoints give the same responses.
/// </summary>
public sealed class MigrationTests
{
    private static readonly (string Method, string Path)[] Script =
    [
        ("GET", "/s/get/a"),
        ("GET", "/s/keys"),
        ("POST", "/s/set/a/1"),
        ("GET", "/s/get/a"),
        ("POST", "/s/int/n"),
        ("POST", "/s/int/n"),
        ("GET", "/s/keys"),
        ("POST", "/s/remove/a"),
        ("GET", "/s/get/a"),
        ("GET", "/s/keys"),
        ("POST", "/s/bytes/raw"),
        ("GET", "/s/id-stable"),
        ("GET", "/s/load"),
        ("POST", "/s/commit/k/v"),
        ("GET", "/s/get/k"),
        ("POST", "/s/clear"),
        ("GET", "/s/keys"),
        ("GET", "/noop"),
    ];

    [Fact]
    public async Task Changing_the_two_registration_lines_keeps_every_response_the_same()
    {
        var builtIn = await RunScriptAsync(
            services =>
            {
                services.AddDistributedMemoryCache();
                services.AddSession();
            },
            app => app.UseSession());

        var cluster = await RunScriptAsync(
            services => services.AddClusterSession(options => options.UseInMemory()),
            app => app.UseClusterSession());

        Assert.Equal(builtIn, cluster);
    }

    private static async Task<List<string>> RunScriptAsync(Action<IServiceCollection> addSession, Action<WebApplication> useSession)
    {
        var keys = Directory.CreateTempSubdirectory("cs-keys-");
        try
        {
            await using var app = await TestApp.StartCoreAsync(keys, addSession, useSession);
            var browser = new Browser();
            var observed = new List<string>();
            foreach (var (method, path) in Script)
            {
                var response = await browser.SendAsync(new HttpMethod(method), app.Address, path);
                var sessionCookie = response.SetCookies.Any(c => c.StartsWith(".AspNetCore.Session=", StringComparison.Ordinal) || c.StartsWith(".ClusterSession=", StringComparison.Ordinal));
                observed.Add($"{method} {path} -> {(int)response.Status} '{response.Body}' cookie:{sessionCookie}");
            }

            return observed;
        }
        finally
        {
            keys.Delete(recursive: true);
        }
    }
}
