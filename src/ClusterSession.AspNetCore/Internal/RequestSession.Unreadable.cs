namespace ClusterSession.AspNetCore.Internal;

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
        SessionDiagnostics.UnreadableAttributes.Add(1, new KeyValuePair<string, object?>(SessionDiagnostics.PolicyTag, PolicyName(policy)));
        if (!_unreadableLogged)
        {
            _unreadableLogged = true;
            Log.AttributeUnreadable(_runtime.Logger, SessionId.ToLogTag(_session?.Id ?? _incomingId ?? string.Empty), requestedType.Name, policy);
        }

        switch (policy)
        {
            case UnreadableAttributePolicy.EndSession:
                _endAtCommit = true;
                break;
            case UnreadableAttributePolicy.Throw:
                throw new SessionAttributeUnreadableException(
                    $"A session attribute no longer deserializes as {requestedType.Name}, probably because a deploy changed its type. Remove or overwrite the attribute, read it as its old type, or set ClusterSessionOptions.UnreadableAttributes to TreatAsAbsent or EndSession.",
                    error)
                {
                    RequestedType = requestedType,
                };
        }
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
