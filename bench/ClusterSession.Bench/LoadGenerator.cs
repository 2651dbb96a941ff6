using System.Diagnostics;
using System.Net;

namespace ClusterSession.Bench;

/// <summary>The request mix of one measurement.</summary>
internal enum Scenario
{
    Read,
    Write,
    Mixed,

    /// <summary>
    /// A signed-in user's request: the session (an authentication-ticket-sized attribute and three small ones) is
    /// read and one small attribute is written, as a real app does. Added by issue 15.
    /// </summary>
    SignedIn,

    /// <summary>A page that never uses the session, requested without a session cookie.</summary>
    NoSession,

    /// <summary>
    /// The same page requested with the cookie of an existing session (a user browsing pages that do not use
    /// the session): what sliding expiry costs. Added by issue 11.
    /// </summary>
    NoSessionCookie,

    /// <summary>
    /// <see cref="NoSessionCookie"/> when the touch is due: one request per session, each on a node that has not
    /// seen the session yet (measured by the harness on its own, sequentially, not by <see cref="LoadGenerator.RunAsync"/>).
    /// </summary>
    NoSessionCookieFirst,
}

/// <summary>What one closed-loop run measured.</summary>
internal sealed record LoadSample(long Requests, long Errors, TimeSpan Elapsed, long[] LatencyTicks);

/// <summary>
/// A closed-loop load generator: <c>connections</c> workers, each with its own session and its
/// own keep-alive connection, sending the next request as soon as the previous one is answered.
/// Bounded by a duration and by a request count, whichever comes first.
/// </summary>
internal sealed class LoadGenerator : IDisposable
{
    private readonly HttpClient _client;
    private readonly IReadOnlyList<string> _cookies;
    private readonly bool _randomSession;

    /// <param name="baseAddress">The contender's address.</param>
    /// <param name="cookies">One session cookie (<c>name=value</c>) per worker.</param>
    public LoadGenerator(Uri baseAddress, IReadOnlyList<string> cookies)
    {
        _cookies = cookies;
        Connections = cookies.Count;
        _client = CreateClient(baseAddress, Connections);
    }

    /// <param name="baseAddress">The contender's address.</param>
    /// <param name="connections">Workers, each with its own connection.</param>
    /// <param name="cookiePool">Session cookies (<c>name=value</c>); every request picks one at random.</param>
    public LoadGenerator(Uri baseAddress, int connections, IReadOnlyList<string> cookiePool)
    {
        _cookies = cookiePool;
        _randomSession = true;
        Connections = connections;
        _client = CreateClient(baseAddress, Connections);
    }

    public int Connections { get; }

    public static HttpClient CreateClient(Uri baseAddress, int maxConnections)
    {
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = maxConnections,
            UseCookies = false,
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(30),
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        };
        return new HttpClient(handler) { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>Creates a session on the contender and returns its cookie as <c>name=value</c>.</summary>
    /// <param name="client">A client of the contender.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <param name="path"><c>/seed</c> (10 attributes of 100 bytes) or <c>/seed-signedin</c> (a signed-in session).</param>
    public static async Task<string> SeedAsync(HttpClient client, CancellationToken cancellationToken, string path = "/seed")
    {
        using var response = await client.PostAsync(new Uri(path, UriKind.Relative), content: null, cancellationToken);
        response.EnsureSuccessStatusCode();
        if (!response.Headers.TryGetValues("Set-Cookie", out var setCookies))
        {
            throw new InvalidOperationException("/seed answered without a Set-Cookie header: the contender did not create a session.");
        }

        var first = setCookies.First();
        var end = first.IndexOf(';', StringComparison.Ordinal);
        return end < 0 ? first : first[..end];
    }

    public static HttpRequestMessage CreateRequest(Scenario scenario, string? cookie, Random random, string? attribute = null)
    {
        var write = scenario == Scenario.Write || (scenario == Scenario.Mixed && random.Next(10) == 0);
        var request = scenario switch
        {
            Scenario.NoSession or Scenario.NoSessionCookie or Scenario.NoSessionCookieFirst => new HttpRequestMessage(HttpMethod.Get, new Uri("/nosession", UriKind.Relative)),
            Scenario.SignedIn => new HttpRequestMessage(HttpMethod.Post, new Uri("/signedin", UriKind.Relative)),
            _ when write => new HttpRequestMessage(HttpMethod.Post, new Uri(attribute is null ? "/write" : "/write?name=" + attribute, UriKind.Relative)),
            _ => new HttpRequestMessage(HttpMethod.Get, new Uri("/read", UriKind.Relative)),
        };
        if (scenario != Scenario.NoSession && cookie is not null)
        {
            request.Headers.TryAddWithoutValidation("Cookie", cookie);
        }

        return request;
    }

    public async Task<LoadSample> RunAsync(Scenario scenario, TimeSpan duration, long maxRequests, CancellationToken cancellationToken)
    {
        long issued = 0;
        long errors = 0;
        var deadline = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var latencies = new List<long>[Connections];
        var start = Stopwatch.GetTimestamp();
        var workers = new Task[Connections];
        for (var w = 0; w < Connections; w++)
        {
            var worker = w;
            latencies[worker] = new List<long>(1024);
            workers[worker] = Task.Run(
                async () =>
                {
                    var random = new Random(worker);

                    // Every worker sends at least one request: on a loaded machine a worker may start after a short
                    // cell's deadline, and a cell without a sample measures nothing.
                    var first = true;
                    while (!cancellationToken.IsCancellationRequested
                        && (first || Stopwatch.GetTimestamp() < deadline)
                        && Interlocked.Increment(ref issued) <= maxRequests)
                    {
                        first = false;
                        using var request = CreateRequest(scenario, _cookies[_randomSession ? random.Next(_cookies.Count) : worker], random);
                        var sent = Stopwatch.GetTimestamp();
                        try
                        {
                            using var response = await _client.SendAsync(request, cancellationToken);
                            await response.Content.CopyToAsync(Stream.Null, cancellationToken);
                            latencies[worker].Add(Stopwatch.GetTimestamp() - sent);
                            if (!response.IsSuccessStatusCode)
                            {
                                Interlocked.Increment(ref errors);
                            }
                        }
                        catch (HttpRequestException)
                        {
                            Interlocked.Increment(ref errors);
                        }
                    }
                },
                cancellationToken);
        }

        await Task.WhenAll(workers);
        var elapsed = Stopwatch.GetElapsedTime(start);
        var all = latencies.SelectMany(l => l).ToArray();
        return new LoadSample(all.Length, errors, elapsed, all);
    }

    public void Dispose() => _client.Dispose();
}
