namespace ClusterSession.AspNetCore;

/// <summary>
/// Endpoint metadata: requests to this endpoint may read the session but never keep it alive. Put it on a controller
/// or action, or add it to any endpoint with <c>.DoesNotExtendSession()</c> (minimal APIs, route groups, controllers);
/// meant for polling, status and health endpoints that a page calls on a timer, so that an open browser tab does not
/// keep a session alive forever.
/// </summary>
/// <remarks>
/// <para>Under this metadata a request's session is loaded without touching it (the store refreshes neither its last
/// access nor its expiry, <see cref="SessionLoadOptions.NoTouch"/>), a request that carries a session id but never
/// reads it does not slide it either, and no session is created. The session still ends at its idle timeout counted
/// from the last request to an endpoint without this metadata.</para>
/// <para>Writing to the session throws <see cref="InvalidOperationException"/> naming this metadata: setting or
/// removing a value (also through <c>HttpContext.Session</c>), <c>UpdateAsync</c>, setting the principal or the idle
/// timeout, renewing the id or signing in. Ending the session (<c>InvalidateAsync</c>, sign-out) is allowed: it cannot
/// keep a session alive. Cookie authentication's sliding renewal of a ticket ClusterSession keeps is skipped (the
/// ticket is not extended either), as is its removal of an expired ticket.</para>
/// <para>The metadata is read from the request's endpoint when the session is first used, so <c>UseRouting()</c> may
/// come before or after <c>UseClusterSession()</c>.</para>
/// </remarks>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Method, AllowMultiple = false, Inherited = true)]
public sealed class DoesNotExtendSessionAttribute : Attribute
{
}
