using System.Security.Claims;
using ClusterSession.AspNetCore.Sessions;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace ClusterSession.AspNetCore.Authentication;

/// <summary>
/// Wraps ASP.NET Core's <see cref="IAuthenticationService"/> so that every sign-in, through any scheme,
/// renews the session id and binds the session to the principal (session fixation protection), and
/// sign-out invalidates the session. Requests outside <c>UseClusterSession()</c> pass through unchanged.
/// </summary>
internal sealed class SessionAuthenticationService : IAuthenticationService
{
    private readonly IAuthenticationService _inner;
    private readonly ClusterSessionOptions _options;

    public SessionAuthenticationService(IAuthenticationService inner, IOptions<ClusterSessionOptions> options)
    {
        _inner = inner;
        _options = options.Value;
    }

    public Task<AuthenticateResult> AuthenticateAsync(HttpContext context, string? scheme) => _inner.AuthenticateAsync(context, scheme);

    public Task ChallengeAsync(HttpContext context, string? scheme, AuthenticationProperties? properties) => _inner.ChallengeAsync(context, scheme, properties);

    public Task ForbidAsync(HttpContext context, string? scheme, AuthenticationProperties? properties) => _inner.ForbidAsync(context, scheme, properties);

    public async Task SignInAsync(HttpContext context, string? scheme, ClaimsPrincipal principal, AuthenticationProperties? properties)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(principal);
        if (context.Features.Get<RequestSession>() is { } session)
        {
            await session.SignInAsync(principal.Identity?.Name, _options.RenewIdOnSignIn, context.RequestAborted).ConfigureAwait(false);
        }

        await _inner.SignInAsync(context, scheme, principal, properties).ConfigureAwait(false);
    }

    public async Task SignOutAsync(HttpContext context, string? scheme, AuthenticationProperties? properties)
    {
        ArgumentNullException.ThrowIfNull(context);
        await _inner.SignOutAsync(context, scheme, properties).ConfigureAwait(false);
        if (_options.InvalidateOnSignOut && context.Features.Get<RequestSession>() is { } session)
        {
            await session.InvalidateAsync(context.RequestAborted).ConfigureAwait(false);
        }
    }
}

/// <summary>Marks a service collection whose authentication service ClusterSession already wraps.</summary>
internal sealed class AuthenticationDecorated;
