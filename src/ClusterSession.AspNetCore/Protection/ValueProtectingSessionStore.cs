using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ClusterSession.AspNetCore.Protection;

/// <summary>
/// Encrypts attribute values on their way into a store and decrypts them on their way out
/// (<see cref="ClusterSessionOptions.EncryptValues"/>), so the store holds no readable value while the application
/// sees plaintext. Reads always decrypt what is encrypted and pass plain values through, whether or not
/// <paramref name="encrypt"/> is on: turning encryption on signs no one out, and turning it off keeps reading what
/// was encrypted meanwhile. Names, metadata and the principal stay as they are.
/// </summary>
/// <remarks>
/// Compare-and-set: Data Protection is randomized, so two encryptions of one value differ and the store cannot
/// compare plaintexts. The decorator sends as expected value the ciphertext it read or wrote for that plaintext
/// (remembered per plaintext array, for as long as the array lives); when it knows none, or the store holds another
/// ciphertext of an equal plaintext, the store's mismatch returns the stored ciphertext, which is decrypted and, when
/// its plaintext equals the expected one, becomes the expected value of the next attempt. A value that does not
/// decrypt counts as absent, as it reads: expecting absent replaces it.
/// </remarks>
internal sealed class ValueProtectingSessionStore(ISessionStore inner, AttributeValueProtector protector, bool encrypt) : ISessionStore
{
    /// <summary>Attempts of one compare-and-set when the stored ciphertext keeps changing to new encryptions of the expected plaintext.</summary>
    private const int MaxEqualPlaintextAttempts = 8;

    /// <summary>The ciphertext each plaintext this decorator handed out or wrote came from (by array identity).</summary>
    private readonly ConditionalWeakTable<byte[], byte[]> _ciphertexts = new();

    public ISessionStore Inner => inner;

    public ValueTask<bool> CreateAsync(SessionSnapshot session, CancellationToken cancellationToken = default)
    {
        if (!encrypt || session.Attributes.Count == 0)
        {
            return inner.CreateAsync(session, cancellationToken);
        }

        var protectedSession = new SessionSnapshot(
            session.Id, session.Handle, session.CreatedAt, session.LastAccessedAt, session.IdleTimeout, session.AbsoluteExpiresAt,
            session.Principal, session.Version, ProtectAll(session.Attributes));
        return inner.CreateAsync(protectedSession, cancellationToken);
    }

    public ValueTask<SessionSnapshot?> LoadAsync(string id, CancellationToken cancellationToken = default)
    {
        var pending = inner.LoadAsync(id, cancellationToken);
        return pending.IsCompletedSuccessfully ? new ValueTask<SessionSnapshot?>(Unprotect(pending.Result)) : LoadSlowAsync(pending);
    }

    public ValueTask<SessionSnapshot?> LoadAsync(string id, SessionLoadOptions options, CancellationToken cancellationToken = default)
    {
        var pending = inner.LoadAsync(id, options, cancellationToken);
        return pending.IsCompletedSuccessfully ? new ValueTask<SessionSnapshot?>(Unprotect(pending.Result)) : LoadSlowAsync(pending);
    }

    public ValueTask<SessionSaveResult> SaveAsync(SessionChanges changes, CancellationToken cancellationToken = default)
    {
        if (!encrypt || changes.Set.Count == 0)
        {
            return inner.SaveAsync(changes, cancellationToken);
        }

        var protectedChanges = new SessionChanges(
            changes.Id, ProtectAll(changes.Set), changes.Removed, changes.PrincipalChanged, changes.Principal, changes.IdleTimeout);
        return inner.SaveAsync(protectedChanges, cancellationToken);
    }

    public ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default) => inner.DeleteAsync(id, cancellationToken);

    public ValueTask<bool> DeleteByHandleAsync(string principal, string handle, CancellationToken cancellationToken = default) => inner.DeleteByHandleAsync(principal, handle, cancellationToken);

    public ValueTask<bool> ChangeIdAsync(string oldId, string newId, CancellationToken cancellationToken = default)
        => inner.ChangeIdAsync(oldId, newId, cancellationToken);

    public async ValueTask<AttributeCasResult> CompareAndSetAttributeAsync(
        string id, string name, ReadOnlyMemory<byte>? expected, byte[]? replacement, CancellationToken cancellationToken = default)
    {
        var stored = replacement is not null && encrypt ? Protect(name, replacement) : replacement;
        // The cast matters: without it `null` would become an empty ReadOnlyMemory (through byte[]) and "absent" would mean "empty".
        var guess = expected is { } plain ? (ReadOnlyMemory<byte>?)(KnownCiphertext(plain) ?? plain) : null;
        for (var attempt = 1; ; attempt++)
        {
            var result = await inner.CompareAndSetAttributeAsync(id, name, guess, stored, cancellationToken).ConfigureAwait(false);
            if (result.Status != AttributeCasStatus.Mismatch)
            {
                return result;
            }

            if (result.Current is not { } current)
            {
                return result;
            }

            var readable = TryRead(name, current, out var currentPlain);
            var equal = expected is { } e
                ? readable && e.Span.SequenceEqual(currentPlain)
                : !readable; // a value that does not decrypt reads as absent, so "expected absent" may replace it
            if (!equal || attempt >= MaxEqualPlaintextAttempts)
            {
                return AttributeCasResult.Mismatch(readable ? currentPlain : null);
            }

            guess = current;
        }
    }

    public async ValueTask<IReadOnlyList<SessionSnapshot>> FindByPrincipalAsync(string principal, CancellationToken cancellationToken = default)
    {
        var sessions = await inner.FindByPrincipalAsync(principal, cancellationToken).ConfigureAwait(false);
        SessionSnapshot[]? decrypted = null;
        for (var i = 0; i < sessions.Count; i++)
        {
            var session = Unprotect(sessions[i])!;
            if (!ReferenceEquals(session, sessions[i]))
            {
                decrypted ??= [.. sessions];
                decrypted[i] = session;
            }
        }

        return decrypted ?? sessions;
    }

    public ValueTask<long> CountAsync(CancellationToken cancellationToken = default) => inner.CountAsync(cancellationToken);

    public ValueTask<SessionAdmission> AdmitAsync(string id, string principal, int maxSessions, SessionCapPolicy policy, CancellationToken cancellationToken = default)
        => inner.AdmitAsync(id, principal, maxSessions, policy, cancellationToken);

    private async ValueTask<SessionSnapshot?> LoadSlowAsync(ValueTask<SessionSnapshot?> pending)
        => Unprotect(await pending.ConfigureAwait(false));

    /// <summary>
    /// The snapshot with every encrypted value decrypted; the same snapshot when it holds none (a store written
    /// without encryption costs one scan of the values and no allocation).
    /// </summary>
    private SessionSnapshot? Unprotect(SessionSnapshot? session)
    {
        if (session is null || !AnyProtected(session.Attributes))
        {
            return session;
        }

        var attributes = new DecryptedAttributes(session.Attributes.Count);
        foreach (var (name, value) in session.Attributes)
        {
            if (!AttributeValueProtector.IsProtected(value))
            {
                attributes[name] = value;
            }
            else if (protector.TryUnprotect(name, value, out var plain))
            {
                _ciphertexts.AddOrUpdate(plain, value);
                attributes[name] = plain;
            }
            else
            {
                attributes.AddUnreadable(name);
            }
        }

        return new SessionSnapshot(
            session.Id, session.Handle, session.CreatedAt, session.LastAccessedAt, session.IdleTimeout, session.AbsoluteExpiresAt,
            session.Principal, session.Version, attributes);
    }

    private static bool AnyProtected(IReadOnlyDictionary<string, byte[]> attributes)
    {
        foreach (var value in attributes.Values)
        {
            if (AttributeValueProtector.IsProtected(value))
            {
                return true;
            }
        }

        return false;
    }

    private Dictionary<string, byte[]> ProtectAll(IReadOnlyDictionary<string, byte[]> values)
    {
        var protectedValues = new Dictionary<string, byte[]>(values.Count, StringComparer.Ordinal);
        foreach (var (name, value) in values)
        {
            protectedValues[name] = Protect(name, value);
        }

        return protectedValues;
    }

    private byte[] Protect(string name, byte[] value)
    {
        var stored = protector.Protect(name, value);
        _ciphertexts.AddOrUpdate(value, stored);
        return stored;
    }

    private bool TryRead(string name, byte[] stored, out byte[] value)
    {
        if (!AttributeValueProtector.IsProtected(stored))
        {
            value = stored;
            return true;
        }

        if (!protector.TryUnprotect(name, stored, out value))
        {
            return false;
        }

        _ciphertexts.AddOrUpdate(value, stored);
        return true;
    }

    /// <summary>The ciphertext <paramref name="plain"/> was read from or written as, when it is a whole array this decorator saw.</summary>
    private byte[]? KnownCiphertext(ReadOnlyMemory<byte> plain)
        => MemoryMarshal.TryGetArray(plain, out var segment) && segment.Array is { } array && segment.Offset == 0 && segment.Count == array.Length
           && _ciphertexts.TryGetValue(array, out var ciphertext)
            ? ciphertext
            : null;
}
