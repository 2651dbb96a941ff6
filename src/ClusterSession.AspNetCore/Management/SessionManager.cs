using System.Security.Cryptography;
using System.Text;
using ClusterSession.AspNetCore.Diagnostics;
using ClusterSession.AspNetCore.Resilience;
using ClusterSession.AspNetCore.Sessions;
using Microsoft.AspNetCore.Http;

namespace ClusterSession.AspNetCore.Management;

/// <summary>
/// <see cref="ISessionManager"/> over the store's principal index. A handle is a keyless one-way hash of
/// the id: the id has 192 random bits, so the hash cannot be reversed, and every server computes the
/// same handle without shared configuration.
/// </summary>
internal sealed class SessionManager : ISessionManager
{
    private readonly SessionRuntime _runtime;
    private readonly SessionEventHub? _events;

    public SessionManager(SessionRuntime runtime, SessionEventHub? events = null)
    {
        _runtime = runtime;
        _events = events;
    }

    public async ValueTask<IReadOnlyList<SessionInfo>> ListAsync(string principal, HttpContext? current = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(principal);
        var request = current?.Features.Get<RequestSession>();
        var currentHandle = request?.StoredIdOrNull is { } currentId ? SessionHandle.FromId(currentId) : null;
        var sessions = await _runtime.FindByPrincipalAsync(principal, request?.Deadline, cancellationToken).ConfigureAwait(false);
        return
        [
            .. sessions
                .OrderByDescending(static s => s.CreatedAt)
                .Select(s =>
                {
                    var userAgent = Reserved(s, ReservedNames.UserAgent);
                    return new SessionInfo(
                        s.Handle,
                        s.CreatedAt,
                        s.LastAccessedAt,
                        s.ExpiresAt,
                        userAgent,
                        string.Equals(s.Handle, currentHandle, StringComparison.Ordinal),
                        DeviceNames.Describe(userAgent),
                        _runtime.Options.RecordClientAddress ? Reserved(s, ReservedNames.ClientAddress) : null);
                }),
        ];
    }

    public async ValueTask<int> RevokeOthersAsync(HttpContext current, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(current);
        var session = RequestSession.Get(current);
        await session.GetLoadedAsync(cancellationToken).ConfigureAwait(false);
        if (session.Principal is not { } principal)
        {
            return 0;
        }

        var keep = SessionHandle.FromId(session.Id);
        var count = 0;
        foreach (var other in await _runtime.FindByPrincipalAsync(principal, session.Deadline, cancellationToken).ConfigureAwait(false))
        {
            if (!string.Equals(other.Handle, keep, StringComparison.Ordinal) && await RevokeByHandleAsync(principal, other.Handle, session.Deadline, cancellationToken).ConfigureAwait(false))
            {
                count++;
            }
        }

        Log.SessionsRevoked(_runtime.Logger, count);
        return count;
    }

    public async ValueTask<bool> RevokeAsync(string principal, string handle, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(principal);
        ArgumentNullException.ThrowIfNull(handle);
        var wanted = Encoding.ASCII.GetBytes(handle);
        foreach (var session in await _runtime.FindByPrincipalAsync(principal, deadline: null, cancellationToken).ConfigureAwait(false))
        {
            if (CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(session.Handle), wanted))
            {
                var deleted = await RevokeByHandleAsync(principal, session.Handle, deadline: null, cancellationToken).ConfigureAwait(false);
                Log.SessionsRevoked(_runtime.Logger, deleted ? 1 : 0);
                return deleted;
            }
        }

        return false;
    }

    public async ValueTask<int> RevokeAllAsync(string principal, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(principal);
        var count = 0;
        foreach (var session in await _runtime.FindByPrincipalAsync(principal, deadline: null, cancellationToken).ConfigureAwait(false))
        {
            if (await RevokeByHandleAsync(principal, session.Handle, deadline: null, cancellationToken).ConfigureAwait(false))
            {
                count++;
            }
        }

        Log.SessionsRevoked(_runtime.Logger, count);
        return count;
    }

    public string GetHandle(string sessionId) => SessionHandle.FromId(sessionId);

    private static string? Reserved(SessionSnapshot session, string name)
        => session.Attributes.TryGetValue(ReservedNames.Prefix + name, out var value) ? Encoding.UTF8.GetString(value) : null;

    /// <summary>Deletes one session of the principal by its handle and reports it as revoked.</summary>
    private async ValueTask<bool> RevokeByHandleAsync(string principal, string handle, RequestDeadline? deadline, CancellationToken cancellationToken)
    {
        var deleted = await _runtime.DeleteByHandleAsync(principal, handle, deadline, cancellationToken).ConfigureAwait(false);
        if (deleted)
        {
            _events?.Raise(SessionLifecycleEventKind.Ended, SessionEndCause.Revoked, handle);
        }

        return deleted;
    }
}
