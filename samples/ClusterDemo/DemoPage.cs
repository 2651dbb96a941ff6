using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;

namespace ClusterDemo;

/// <summary>One of the signed-in user's sessions, as the page and <c>/api/sessions</c> show it.</summary>
internal sealed record DemoSessionInfo(string Handle, DateTimeOffset CreatedAt, DateTimeOffset LastAccessedAt, string? UserAgent, string Device, bool Current);

/// <summary>What the page at <c>/</c> shows.</summary>
internal sealed record DemoPageModel(
    string Node,
    string? User,
    DateTimeOffset? CreatedAt,
    DateTimeOffset? LastAccessedAt,
    TimeSpan IdleTimeout,
    IReadOnlyList<KeyValuePair<string, string>> Attributes,
    IReadOnlyList<string> Cart,
    IReadOnlyList<DemoSessionInfo> Sessions,
    int? MaxSessionsPerUser = null,
    bool NearCache = false);

/// <summary>The server-rendered page: plain HTML, every value HTML-encoded, a little script for the buttons.</summary>
internal static class DemoPage
{
    private static readonly HtmlEncoder Html = HtmlEncoder.Default;

    public static string Render(DemoPageModel model)
    {
        var page = new StringBuilder(4096);
        page.Append("""
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <link rel="icon" href="data:,">
            <title>ClusterDemo</title>
            <style>
            body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #1d2330; }
            h1 { font-size: 1.5rem; margin-bottom: .25rem; }
            .node { display: inline-block; padding: .2rem .6rem; border-radius: .4rem; background: #1f6feb; color: #fff; font-weight: 600; }
            section { border: 1px solid #d0d7de; border-radius: .5rem; padding: .75rem 1rem; margin: 1rem 0; }
            h2 { font-size: 1.05rem; margin: 0 0 .5rem; }
            table { border-collapse: collapse; width: 100%; }
            td, th { text-align: left; padding: .2rem .4rem; border-bottom: 1px solid #eaeef2; font-size: .92rem; }
            .muted { color: #57606a; font-size: .9rem; }
            input { padding: .25rem; }
            button { padding: .25rem .7rem; cursor: pointer; }
            #error { color: #cf222e; }
            </style>
            </head>
            <body>
            <h1>ClusterDemo</h1>
            """);
        page.Append("<p>This page was served by <span class=\"node\" id=\"served-by\">")
            .Append(Html.Encode(model.Node))
            .Append("</span>. Refresh: the load balancer sends each request to the next node, the session follows.</p>\n");
        page.Append("<p id=\"error\" role=\"alert\"></p>\n");

        if (model.User is null)
        {
            page.Append("""
                <section id="login">
                <h2>Log in</h2>
                <p class="muted">Demo users: alice, bob, carol. Password: demo.</p>
                <form id="login-form">
                <label>User <input id="user" name="user" autocomplete="username" value="alice"></label>
                <label>Password <input id="password" name="password" type="password" autocomplete="current-password"></label>
                <button id="login-button" type="submit">Log in</button>
                </form>
                </section>
                """);
        }
        else
        {
            page.Append("<section id=\"you\">\n<h2>You</h2>\n<p>Signed in as <strong id=\"user-name\">")
                .Append(Html.Encode(model.User))
                .Append("</strong>. <button id=\"logout-button\" type=\"button\" onclick=\"logout()\">Log out</button></p>\n</section>\n");
        }

        AppendSession(page, model);
        AppendAttributes(page, model);
        AppendCart(page, model);
        if (model.User is not null)
        {
            AppendSessions(page, model);
        }

        page.Append("""
            <script>
            async function call(method, url, body, type) {
              const init = { method, headers: {} };
              if (body !== undefined) { init.body = body; init.headers['Content-Type'] = type || 'application/json'; }
              const response = await fetch(url, init);
              if (!response.ok) {
                document.getElementById('error').textContent = method + ' ' + url + ' failed: ' + response.status + ' ' + await response.text();
                return false;
              }
              location.reload();
              return true;
            }
            const form = document.getElementById('login-form');
            if (form) {
              form.addEventListener('submit', e => {
                e.preventDefault();
                call('POST', '/api/login', JSON.stringify({ user: document.getElementById('user').value, password: document.getElementById('password').value }));
              });
            }
            function logout() { call('POST', '/api/logout'); }
            function revoke(handle) { call('DELETE', '/api/sessions/' + encodeURIComponent(handle)); }
            function revokeOthers() { call('POST', '/api/sessions/revoke-others'); }
            function setSessionAttribute() {
              const name = document.getElementById('attribute-name').value;
              if (name) call('PUT', '/api/attributes/' + encodeURIComponent(name), document.getElementById('attribute-value').value, 'text/plain');
            }
            function addItem() {
              const item = document.getElementById('cart-item').value;
              if (item) call('POST', '/api/cart/items', JSON.stringify({ item }));
            }
            </script>
            </body>
            </html>
            """);
        return page.ToString();
    }

    private static void AppendSession(StringBuilder page, DemoPageModel model)
    {
        page.Append("<section id=\"session\">\n<h2>Session</h2>\n");
        if (model.CreatedAt is { } created)
        {
            page.Append("<table>\n<tr><th>Created</th><td id=\"created-at\">").Append(Html.Encode(Format(created))).Append("</td></tr>\n")
                .Append("<tr><th>Last access</th><td id=\"last-accessed-at\">").Append(Html.Encode(Format(model.LastAccessedAt ?? created))).Append("</td></tr>\n")
                .Append("<tr><th>Idle timeout</th><td>").Append(model.IdleTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)).Append(" s</td></tr>\n")
                .Append("<tr><th>Sessions per user</th><td id=\"max-sessions-per-user\">")
                .Append(model.MaxSessionsPerUser is { } cap ? "at most " + cap.ToString(CultureInfo.InvariantCulture) + " (a new sign-in ends the oldest)" : "no cap")
                .Append("</td></tr>\n<tr><th>Near cache</th><td id=\"near-cache\">")
                .Append(model.NearCache ? "on (this node reads the session from its own memory until another node changes it)" : "off (every read asks the store)")
                .Append("</td></tr>\n</table>\n");
        }
        else
        {
            page.Append("<p class=\"muted\">No session yet: log in, set an attribute or add to the cart to start one.</p>\n");
        }

        page.Append("</section>\n");
    }

    private static void AppendAttributes(StringBuilder page, DemoPageModel model)
    {
        page.Append("<section id=\"attributes\">\n<h2>Attributes</h2>\n");
        if (model.Attributes.Count == 0)
        {
            page.Append("<p class=\"muted\">None.</p>\n");
        }
        else
        {
            page.Append("<table>\n");
            foreach (var (name, value) in model.Attributes)
            {
                page.Append("<tr><th>").Append(Html.Encode(name)).Append("</th><td>").Append(Html.Encode(value)).Append("</td></tr>\n");
            }

            page.Append("</table>\n");
        }

        page.Append("""
            <p><input id="attribute-name" placeholder="name" size="12"> = <input id="attribute-value" placeholder="value" size="16">
            <button type="button" onclick="setSessionAttribute()">Set</button></p>
            </section>
            """).Append('\n');
    }

    private static void AppendCart(StringBuilder page, DemoPageModel model)
    {
        page.Append("<section id=\"cart\">\n<h2>Cart</h2>\n");
        if (model.Cart.Count == 0)
        {
            page.Append("<p class=\"muted\">Empty.</p>\n");
        }
        else
        {
            page.Append("<ul>\n");
            foreach (var item in model.Cart)
            {
                page.Append("<li>").Append(Html.Encode(item)).Append("</li>\n");
            }

            page.Append("</ul>\n");
        }

        page.Append("""
            <p><input id="cart-item" placeholder="item" size="16"> <button type="button" onclick="addItem()">Add to cart</button></p>
            </section>
            """).Append('\n');
    }

    private static void AppendSessions(StringBuilder page, DemoPageModel model)
    {
        page.Append("<section id=\"sessions\">\n<h2>Your sessions</h2>\n<table>\n<tr><th>Device</th><th>Created</th><th>Last access</th><th></th></tr>\n");
        foreach (var session in model.Sessions)
        {
            // The readable device, with the full User-Agent as a tooltip.
            page.Append("<tr><td class=\"device\" title=\"").Append(Html.Encode(session.UserAgent ?? string.Empty)).Append("\">")
                .Append(Html.Encode(session.Device)).Append("</td><td>")
                .Append(Html.Encode(Format(session.CreatedAt))).Append("</td><td>")
                .Append(Html.Encode(Format(session.LastAccessedAt))).Append("</td><td>");
            if (session.Current)
            {
                page.Append("this device");
            }
            else
            {
                // The handle goes through a data attribute, never into script text.
                page.Append("<button type=\"button\" class=\"revoke\" data-handle=\"").Append(Html.Encode(session.Handle))
                    .Append("\" onclick=\"revoke(this.dataset.handle)\">Revoke</button>");
            }

            page.Append("</td></tr>\n");
        }

        page.Append("</table>\n");
        if (model.Sessions.Any(static s => !s.Current))
        {
            page.Append("<p><button id=\"revoke-others-button\" type=\"button\" onclick=\"revokeOthers()\">Sign out other devices</button></p>\n");
        }

        page.Append("</section>\n");
    }

    private static string Format(DateTimeOffset time) => time.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);
}
