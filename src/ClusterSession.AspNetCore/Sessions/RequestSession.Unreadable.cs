using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using ClusterSession.AspNetCore.Diagnostics;
using ClusterSession.AspNetCore.Protection;

namespace ClusterSession.AspNetCore.Sessions;

/// <summary>Stored attributes that no longer deserialize (<see cref="ClusterSessionOptions.UnreadableAttributes"/>).</summary>
internal sealed partial class RequestSession
{
    private bool _unreadableLogged;
    private bool _endAtCommit;

    /// <summary>
    /// Counts the failed read, logs the first of the request (never the attribute's name or value) and applies the
    /// policy: return (the caller reads default), end the session at commit, or throw.
    /// </summary>
    public void OnUnreadableAttribute(Type requestedType, Exception error)
    {
        var policy = _runtime.Options.UnreadableAttributes;
        _runtime.Metrics.UnreadableAttributes.Add(1, new KeyValuePair<string, object?>(SessionDiagnostics.PolicyTag, PolicyName(policy)));
        if (!_unreadableLogged)
        {
            _unreadableLogged = true;
            if (error is CryptographicException)
            {
                Log.AttributeUndecryptable(_runtime.Logger, SessionId.ToLogTag(_session?.Id ?? _incomingId ?? string.Empty), policy);
            }
            else
            {
                Log.AttributeUnreadable(_runtime.Logger, SessionId.ToLogTag(_session?.Id ?? _incomingId ?? string.Empty), requestedType.Name, policy);
            }
        }

        switch (policy)
        {
            case UnreadableAttributePolicy.EndSession:
                _endAtCommit = true;
                break;
            case UnreadableAttributePolicy.Throw when error is CryptographicException:
                throw new SessionAttributeUnreadableException(
                    "A session attribute is stored encrypted (ClusterSessionOptions.EncryptValues) and does not decrypt: the Data Protection key that encrypted it is gone or revoked, or the stored value was altered. Overwrite the attribute, or set ClusterSessionOptions.UnreadableAttributes to TreatAsAbsent or EndSession.",
                    error)
                {
                    RequestedType = requestedType,
                };
            case UnreadableAttributePolicy.Throw:
                throw new SessionAttributeUnreadableException(
                    $"A session attribute no longer deserializes as {requestedType.Name}, probably because a deploy changed its type. Remove or overwrite the attribute, read it as its old type, or set ClusterSessionOptions.UnreadableAttributes to TreatAsAbsent or EndSession.",
                    error)
                {
                    RequestedType = requestedType,
                };
        }
    }

    /// <summary>
    /// Reads an attribute of the session; a stored value that did not decrypt (<see cref="ClusterSessionOptions.EncryptValues"/>)
    /// reads as absent after the policy is applied, as a value that does not deserialize.
    /// </summary>
    private bool TryGetStored(string name, [NotNullWhen(true)] out byte[]? value)
    {
        var session = Session;
        if (session.TryGetValue(name, out value))
        {
            return true;
        }

        if (DecryptedAttributes.IsUnreadable(session.Snapshot, name))
        {
            OnUnreadableAttribute(typeof(byte[]), new CryptographicException("The stored value does not decrypt."));
        }

        return false;
    }

    /// <summary>Ends the session before committing when a read asked for it (<see cref="UnreadableAttributePolicy.EndSession"/>).</summary>
    private async ValueTask EndIfRequestedAsync(CancellationToken cancellationToken)
    {
        if (_endAtCommit)
        {
            _endAtCommit = false;
            await InvalidateAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static string PolicyName(UnreadableAttributePolicy policy) => policy switch
    {
        UnreadableAttributePolicy.TreatAsAbsent => "treat_as_absent",
        UnreadableAttributePolicy.EndSession => "end_session",
        UnreadableAttributePolicy.Throw => "throw",
        _ => "unknown",
    };
}
