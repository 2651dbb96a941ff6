using System.Diagnostics.CodeAnalysis;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace ClusterSession.AspNetCore.Sessions;

/// <summary>
/// <see cref="ISession"/> over the request's ClusterSession, so that code written for
/// <c>AddSession()</c>/<c>UseSession()</c> runs unchanged. One difference on purpose: a store outage
/// is an error (the request fails with 503), never a silently empty session.
/// </summary>
internal sealed class SessionAdapter : ISession, ISessionFeature
{
    private readonly RequestSession _session;
    private bool _loadFailed;

    public SessionAdapter(RequestSession session) => _session = session;

    ISession ISessionFeature.Session
    {
        get => this;
        set => throw new NotSupportedException("ClusterSession provides HttpContext.Session; it cannot be replaced.");
    }

    public bool IsAvailable
    {
        get
        {
            if (_loadFailed)
            {
                return false;
            }

            try
            {
                _ = _session.IsNew;
                return true;
            }
            catch (SessionStoreUnavailableException)
            {
                // As ASP.NET Core's own session, IsAvailable reports a failed load instead of throwing;
                // reading or writing the session afterwards throws, so the request still fails.
                _loadFailed = true;
                return false;
            }
        }
    }

    public string Id => _session.Id;

    public IEnumerable<string> Keys => _session.Keys;

    public void Clear() => _session.Clear();

    public Task CommitAsync(CancellationToken cancellationToken = default) => _session.CommitAsync(cancellationToken).AsTask();

    public Task LoadAsync(CancellationToken cancellationToken = default) => _session.GetLoadedAsync(cancellationToken).AsTask();

    public void Remove(string key) => _session.RemoveWithoutResult(key);

    public void Set(string key, byte[] value)
    {
        ArgumentNullException.ThrowIfNull(value);

        // ISession callers may reuse their array; the built-in session copies too.
        _session.Set(key, (byte[])value.Clone());
    }

    public bool TryGetValue(string key, [NotNullWhen(true)] out byte[]? value) => _session.TryGetValue(key, out value);
}
