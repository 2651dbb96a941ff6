using System.Buffers.Text;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ClusterSession.Demo.Tests;

namespace ClusterSession.Upgrade.Tests;

/// <summary>A cookie value a browser holds (a secret), and whose it is, e.g. "the .ClusterSession cookie of alice".</summary>
public sealed record HeldCookie(string Owner, string Value);

/// <summary>
/// What an attacker who can only read the store does with a dump of it (issue 20): look for pieces of the cookies the
/// browsers hold, collect every token-shaped string, and find user names in key names. Reports never quote a secret:
/// <see cref="Redact"/> cuts what looks like one to its first four characters.
/// </summary>
public static partial class StoreReader
{
    /// <summary>A piece of a secret: any run of this many characters of the cookie value, to catch a truncated or re-encoded copy.</summary>
    public const int PieceChars = 16;

    /// <summary>
    /// Every place in <paramref name="dump"/> that holds a piece of a cookie value: as text, as hex of the text, as its
    /// base64url-decoded bytes (12 bytes, the bytes of 16 characters), as hex of those bytes (either case) and as
    /// standard base64 of those bytes. One line per cookie, form and place.
    /// </summary>
    public static IReadOnlyList<string> FindPieces(IReadOnlyList<StoredBytes> dump, IReadOnlyList<HeldCookie> cookies)
    {
        // Piece length → (piece as Latin-1 text → what it is a piece of); matched by sliding over each item once.
        var pieces = new Dictionary<int, Dictionary<string, string>>();
        void Add(string piece, string what)
        {
            if (!pieces.TryGetValue(piece.Length, out var ofLength))
            {
                pieces[piece.Length] = ofLength = new(StringComparer.Ordinal);
            }

            ofLength.TryAdd(piece, what);
        }

        foreach (var cookie in cookies)
        {
            var text = Encoding.UTF8.GetBytes(cookie.Value);
            foreach (var window in Windows(text, PieceChars))
            {
                Add(Encoding.Latin1.GetString(window), $"{cookie.Owner} (as text)");
                Add(Convert.ToHexStringLower(window), $"{cookie.Owner} (as hex of the text)");
                Add(Convert.ToHexString(window), $"{cookie.Owner} (as hex of the text)");
            }

            if (Base64Url.IsValid(cookie.Value) && Base64Url.DecodeFromChars(cookie.Value) is { Length: >= 12 } bytes)
            {
                foreach (var window in Windows(bytes, 12))
                {
                    Add(Encoding.Latin1.GetString(window), $"{cookie.Owner} (as bytes)");
                    Add(Convert.ToHexStringLower(window), $"{cookie.Owner} (as hex of the bytes)");
                    Add(Convert.ToHexString(window), $"{cookie.Owner} (as hex of the bytes)");
                }

                var base64 = Convert.ToBase64String(bytes);
                for (var i = 0; i + PieceChars <= base64.Length; i++)
                {
                    Add(base64.Substring(i, PieceChars), $"{cookie.Owner} (as base64)");
                }
            }
        }

        var found = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var item in dump)
        {
            var haystack = Encoding.Latin1.GetString(item.Bytes);
            foreach (var (length, ofLength) in pieces)
            {
                var lookup = ofLength.GetAlternateLookup<ReadOnlySpan<char>>();
                for (var i = 0; i + length <= haystack.Length; i++)
                {
                    if (lookup.TryGetValue(haystack.AsSpan(i, length), out var what))
                    {
                        found.Add($"a piece of {what} in {Redact(item.Location)}");
                    }
                }
            }
        }

        return [.. found];
    }

    /// <summary>
    /// Every token-shaped string in <paramref name="dump"/>, as an attacker would try them as cookies: base64url runs of
    /// 16+ characters (and, split at '-' and '_', their parts of 16+), hex runs of 32+ characters, and those hex runs'
    /// bytes as base64url (a binary id shown as hex). Distinct, in the order found.
    /// </summary>
    public static IReadOnlyList<string> Tokens(IReadOnlyList<StoredBytes> dump)
    {
        var tokens = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Add(string token)
        {
            if (seen.Add(token))
            {
                tokens.Add(token);
            }
        }

        foreach (var item in dump)
        {
            var text = Encoding.Latin1.GetString(item.Bytes);
            foreach (Match run in Base64UrlRun().Matches(text))
            {
                Add(run.Value);
                foreach (var part in run.Value.Split(['-', '_']).Where(p => p.Length >= PieceChars))
                {
                    Add(part);
                }
            }

            foreach (Match run in HexRun().Matches(text))
            {
                Add(run.Value);
                var even = run.Value[..(run.Value.Length & ~1)];
                Add(Base64Url.EncodeToString(Convert.FromHexString(even)));
            }
        }

        return tokens;
    }

    /// <summary>Key names (Redis) that contain a user name as a word of its own (not inside a longer run of letters and digits).</summary>
    public static IReadOnlyList<string> KeyNamesNaming(IReadOnlyList<StoredBytes> dump, IReadOnlyList<string> users)
        => [.. dump.Where(item => item.Location.StartsWith(RedisDump.KeyLocation, StringComparison.Ordinal))
            .Select(item => Encoding.Latin1.GetString(item.Bytes))
            .SelectMany(key => users.Where(user => Regex.IsMatch(key, $"(?<![A-Za-z0-9]){Regex.Escape(user)}(?![A-Za-z0-9])"))
                .Select(user => $"{user} in key {Redact(key)}"))
            .Distinct()];

    /// <summary>
    /// The location with every base64url run of 16+ characters that has a digit or a capital letter (any id does; a table
    /// name does not) cut to its first four, so a report spreads no secret.
    /// </summary>
    public static string Redact(string location)
        => Base64UrlRun().Replace(location, m => m.Value.Any(c => char.IsAsciiDigit(c) || char.IsAsciiLetterUpper(c)) ? m.Value[..4] + "…" : m.Value);

    private static IEnumerable<byte[]> Windows(byte[] bytes, int length)
    {
        for (var i = 0; i + length <= bytes.Length; i++)
        {
            yield return bytes[i..(i + length)];
        }
    }

    [GeneratedRegex("[A-Za-z0-9_-]{16,}")]
    private static partial Regex Base64UrlRun();

    [GeneratedRegex("[0-9A-Fa-f]{32,}")]
    private static partial Regex HexRun();
}

/// <summary>A victim: a signed-in user and the attribute values only their session holds.</summary>
public sealed record Victim(string User, IReadOnlyCollection<string> Values);

/// <summary>
/// The replay of every token found in the store as cookies of a fresh client with no cookies of its own, against one
/// node of the demo. For each token: as the <c>.ClusterSession</c> cookie (GET /api/attributes must show no victim's
/// value, GET /api/me must be 401), and as the authentication cookie alone (GET /api/me must be 401). Each token that
/// opened a victim's session is then paired, as the session cookie, with every token as the authentication cookie.
/// A takeover is a request that read a victim's value or was answered as signed in.
/// </summary>
public sealed class Replay
{
    private const int Parallelism = 4;
    private readonly object _gate = new();
    private readonly SortedSet<string> _takenOver = new(StringComparer.Ordinal);
    private readonly List<string> _takeovers = [];
    private readonly List<string> _unexpected = [];
    private int _requests;

    private Replay(int tokens) => Tokens = tokens;

    /// <summary>Distinct tokens tried.</summary>
    public int Tokens { get; }

    public int Requests => _requests;

    /// <summary>Victims whose data or sign-in any request got.</summary>
    public IReadOnlyCollection<string> TakenOver => _takenOver;

    /// <summary>What each takeover was (token redacted).</summary>
    public IReadOnlyList<string> Takeovers => _takeovers;

    /// <summary>Answers neither a takeover nor the expected miss (401 from /api/me, 200 from /api/attributes): a garbage cookie must be a miss.</summary>
    public IReadOnlyList<string> Unexpected => _unexpected;

    public string Summary(int victims)
        => $"replayed {Tokens} tokens in {Requests} requests: {_takeovers.Count} takeovers, {_takenOver.Count} of {victims} users taken over, {_unexpected.Count} unexpected answers" +
            string.Concat(_takeovers.Concat(_unexpected).Take(20).Select(line => "\n  " + line));

    public static async Task<Replay> RunAsync(Uri node, IReadOnlyList<string> tokens, IReadOnlyList<Victim> victims)
    {
        var replay = new Replay(tokens.Count);
        using var attacker = new HttpClient(new SocketsHttpHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = node, Timeout = TimeSpan.FromSeconds(30) };
        var openers = new List<string>();
        await Parallel.ForEachAsync(tokens, new ParallelOptions { MaxDegreeOfParallelism = Parallelism }, async (token, _) =>
        {
            var session = $"{DemoClient.CookieName}={token}";
            if (await replay.ReadsVictimValuesAsync(attacker, session, victims))
            {
                lock (openers)
                {
                    openers.Add(token);
                }
            }

            await replay.SignsInAsync(attacker, session);
            await replay.SignsInAsync(attacker, $"{DemoClient.AuthCookieName}={token}");
        });
        foreach (var opener in openers)
        {
            await Parallel.ForEachAsync(tokens, new ParallelOptions { MaxDegreeOfParallelism = Parallelism }, async (token, _) =>
                await replay.SignsInAsync(attacker, $"{DemoClient.CookieName}={opener}; {DemoClient.AuthCookieName}={token}"));
        }

        return replay;
    }

    private async Task<bool> ReadsVictimValuesAsync(HttpClient attacker, string cookie, IReadOnlyList<Victim> victims)
    {
        var (status, body) = await GetAsync(attacker, "/api/attributes", cookie);
        if (status != HttpStatusCode.OK)
        {
            Unexpect($"GET /api/attributes with {StoreReader.Redact(cookie)} answered {(int)status} {body}");
            return false;
        }

        var values = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(body)!.Values.Select(v => v.ToString()).ToHashSet(StringComparer.Ordinal);
        var read = victims.Where(v => v.Values.Any(values.Contains)).ToList();
        foreach (var victim in read)
        {
            Note(victim.User, $"GET /api/attributes with {StoreReader.Redact(cookie)} read {victim.User}'s values");
        }

        return read.Count > 0;
    }

    private async Task SignsInAsync(HttpClient attacker, string cookie)
    {
        var (status, body) = await GetAsync(attacker, "/api/me", cookie);
        if (status == HttpStatusCode.Unauthorized)
        {
            return;
        }

        if (status != HttpStatusCode.OK)
        {
            Unexpect($"GET /api/me with {StoreReader.Redact(cookie)} answered {(int)status} {body}");
            return;
        }

        var user = JsonDocument.Parse(body).RootElement.TryGetProperty("user", out var name) ? name.GetString() : null;
        Note(user ?? "(no user)", $"GET /api/me with {StoreReader.Redact(cookie)} signed in as {user}");
    }

    private async Task<(HttpStatusCode Status, string Body)> GetAsync(HttpClient attacker, string path, string cookie)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.TryAddWithoutValidation("Cookie", cookie);
        using var response = await attacker.SendAsync(request);
        Interlocked.Increment(ref _requests);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private void Unexpect(string answer)
    {
        lock (_gate)
        {
            _unexpected.Add(answer);
        }
    }

    private void Note(string victim, string takeover)
    {
        lock (_gate)
        {
            _takenOver.Add(victim);
            _takeovers.Add(takeover);
        }
    }
}
