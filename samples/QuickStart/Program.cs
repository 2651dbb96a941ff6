using System.Net;
using System.Security.Claims;
using ClusterSession.AspNetCore;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Mvc;

var builder = WebApplication.CreateBuilder(args);
builder.WebHost.UseUrls(builder.Configuration["urls"] ?? "http://127.0.0.1:5000");

// Sessions in Redis when one is given (--Redis 127.0.0.1:6379, or Redis=... in the environment or appsettings.json), else in memory.
// With Redis, the Data Protection key ring that protects the sign-in cookie is kept there too, for every instance.
var redis = builder.Configuration["Redis"];
builder.Services.AddClusterSession(options =>
{
    if (string.IsNullOrEmpty(redis)) options.UseInMemory(); else options.UseRedis(redis);
});
builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme).AddCookie();
builder.Services.AddAntiforgery();

var app = builder.Build();
app.UseClusterSession(); // before authentication: the sign-in ticket is kept in the session
app.UseAuthentication();
app.UseAntiforgery();

app.MapGet("/", async (HttpContext http, IAntiforgery antiforgery) =>
{
    await http.Session.LoadAsync();
    var visits = (http.Session.GetInt32("visits") ?? 0) + 1; // read the session ...
    http.Session.SetInt32("visits", visits);                 // ... and write it
    var token = antiforgery.GetAndStoreTokens(http);
    var name = http.User.Identity?.IsAuthenticated == true ? WebUtility.HtmlEncode(http.User.Identity.Name) : null;
    var buttons = name is null ? "<input name=name required> <button formaction=/sign-in>Sign in</button>" : "<button formaction=/sign-out>Sign out</button>";
    return Results.Content($"""
        <!doctype html><title>QuickStart</title>
        <p>{(name is null ? "Not signed in" : $"Signed in as {name}")}. Visits in this session: {visits}.</p>
        <form method=post><input type=hidden name={token.FormFieldName} value={token.RequestToken}>{buttons}</form>
        """, "text/html");
});
app.MapPost("/sign-in", async (HttpContext http, [FromForm] string name) =>
{
    await http.SignInAsync(new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, name)], CookieAuthenticationDefaults.AuthenticationScheme)));
    return Results.Redirect("/");
});
app.MapPost("/sign-out", async (HttpContext http, IAntiforgery antiforgery) =>
{
    if (!await antiforgery.IsRequestValidAsync(http)) return Results.BadRequest();
    await http.SignOutAsync(); // ClusterSession deletes the session, with the ticket, in the store
    return Results.Redirect("/");
});
app.Run();
