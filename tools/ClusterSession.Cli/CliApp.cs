using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using ClusterSession.Postgres;
using ClusterSession.Redis;
using Microsoft.Extensions.Options;

namespace ClusterSession.Cli;

/// <summary>
/// Runs one command of <c>clustersession</c> on the store the command line names. Everything goes through the
/// stores' own code (<see cref="ISessionStore"/>, <see cref="ISessionStoreAdministration"/>): this file knows no
/// key, field, table or SQL. Sessions are named by their handle (<see cref="SessionHandle"/>), never by id, and
/// attribute values are never read out, only their sizes.
/// </summary>
public static class CliApp
{
    internal const string UsageText = """
        Usage: clustersession <command> [arguments] (--redis <configuration> [--key-prefix <prefix>]
                                                    | --postgres <connection string> [--schema <schema>] [--table-prefix <prefix>])
                                                   [--json] [--yes]
        Commands:
          count [--user U]            live sessions (all, or one user's)
          list --user U               the user's sessions: handle, created, last seen, expires, device
          show <handle> --user U      one session: metadata, attribute names and sizes (never values)
          revoke <handle> --user U    ends one session
          revoke-user U               ends every session of the user
          stats [--sample N]          sessions, bytes per session and time-to-live buckets from a sample (default 200)
          upgrade                     finishes the store's upgrade to the current layout (docs/operations.md, "Upgrading")
        Options:
          --json                      machine-readable output
          --yes                       run a full count even when the store must scan more than --max-scan keys (default 100000)
        Exit codes: 0 ok, 1 not found, 2 usage error, refused without --yes, or upgrade refused, 3 store unavailable.
        """;

    /// <summary>Parses <paramref name="args"/>, runs the command, writes its result to <paramref name="output"/> and any error to <paramref name="error"/>.</summary>
    /// <returns>One of <see cref="ExitCodes"/>.</returns>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        CliOptions options;
        try
        {
            options = CliOptions.Parse(args);
        }
        catch (UsageException ex)
        {
            await error.WriteLineAsync($"clustersession: {ex.Message}\n\n{UsageText}").ConfigureAwait(false);
            return ExitCodes.Usage;
        }

        if (options.Help)
        {
            await output.WriteLineAsync(UsageText).ConfigureAwait(false);
            return ExitCodes.Ok;
        }

        try
        {
            var store = OpenStore(options);
            await using (store.ConfigureAwait(false))
            {
                var commands = new Commands((ISessionStore)store, options, output);
                return await commands.RunAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (UsageException ex)
        {
            await error.WriteLineAsync($"clustersession: {ex.Message}").ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        catch (NotFoundException ex)
        {
            await error.WriteLineAsync($"clustersession: {ex.Message}").ConfigureAwait(false);
            return ExitCodes.NotFound;
        }
        catch (OptionsValidationException ex)
        {
            await error.WriteLineAsync($"clustersession: {ex.Message}").ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        catch (ArgumentException ex)
        {
            await error.WriteLineAsync($"clustersession: {ex.Message}").ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        catch (ClusterSessionException ex)
        {
            // The stores' messages never hold a session id, an attribute name or a value.
            await error.WriteLineAsync($"clustersession: the store is unavailable: {ex.Message}").ConfigureAwait(false);
            return ExitCodes.StoreUnavailable;
        }
    }

    private static IAsyncDisposable OpenStore(CliOptions options)
    {
        if (options.Redis is { } configuration)
        {
            var redis = new RedisSessionStoreOptions { Configuration = configuration };
            if (options.KeyPrefix is { } prefix)
            {
                redis.KeyPrefix = prefix;
            }

            return new RedisSessionStore(redis);
        }

        // A short-lived tool leaves the expired-row cleanup to the application's instances.
        var postgres = new PostgresSessionStoreOptions { ConnectionString = options.Postgres, CleanupInterval = Timeout.InfiniteTimeSpan };
        if (options.Schema is { } schema)
        {
            postgres.Schema = schema;
        }

        if (options.TablePrefix is { } tablePrefix)
        {
            postgres.TablePrefix = tablePrefix;
        }

        return new PostgresSessionStore(postgres);
    }

    // Output for a terminal or a script, never embedded in HTML: "<1m" stays readable.
    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private sealed class Commands(ISessionStore store, CliOptions options, TextWriter output)
    {
        private readonly ISessionStoreAdministration _admin = store as ISessionStoreAdministration
            ?? throw new UsageException("This store does not implement ISessionStoreAdministration.");

        public Task<int> RunAsync(CancellationToken token) => options.Command switch
        {
            "count" => CountAsync(token),
            "list" => ListAsync(token),
            "show" => ShowAsync(token),
            "revoke" => RevokeAsync(token),
            "revoke-user" => RevokeUserAsync(token),
            "stats" => StatsAsync(token),
            "upgrade" => UpgradeAsync(token),
            _ => throw new UsageException($"Unknown command '{options.Command}'. Commands: count, list, show, revoke, revoke-user, stats, upgrade."),
        };

        private async Task<int> UpgradeAsync(CancellationToken token)
        {
            Arguments(0);
            var upgrade = store as ISessionStoreUpgrade
                ?? throw new UsageException("This store has no versioned layout (it does not implement ISessionStoreUpgrade): nothing to upgrade.");
            var result = await upgrade.UpgradeAsync(token).ConfigureAwait(false);
            await WriteAsync(
                w =>
                {
                    w.WriteString("status", result.Status switch
                    {
                        SessionStoreUpgradeStatus.Upgraded => "upgraded",
                        SessionStoreUpgradeStatus.NothingToDo => "nothing-to-do",
                        _ => "refused",
                    });
                    w.WriteString("message", result.Message);
                    w.WriteNumber("sessionsMoved", result.SessionsMoved);
                },
                result.Message).ConfigureAwait(false);
            return result.Status == SessionStoreUpgradeStatus.Refused ? ExitCodes.Refused : ExitCodes.Ok;
        }

        private async Task<int> CountAsync(CancellationToken token)
        {
            Arguments(0);
            long count;
            if (options.User is { } user)
            {
                count = (await store.FindByPrincipalAsync(user, token).ConfigureAwait(false)).Count;
            }
            else
            {
                await RefuseLargeScanAsync("count", token).ConfigureAwait(false);
                count = await store.CountAsync(token).ConfigureAwait(false);
            }

            await WriteAsync(
                w => w.WriteNumber("count", count),
                count.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
            return ExitCodes.Ok;
        }

        private async Task<int> ListAsync(CancellationToken token)
        {
            Arguments(0);
            var user = User("list");
            var sessions = (await store.FindByPrincipalAsync(user, token).ConfigureAwait(false)).OrderByDescending(static s => s.CreatedAt).ToList();
            if (options.Json)
            {
                await WriteJsonAsync(w =>
                {
                    w.WriteStartArray();
                    foreach (var s in sessions)
                    {
                        w.WriteStartObject();
                        w.WriteString("handle", s.Handle);
                        w.WriteString("created", s.CreatedAt);
                        w.WriteString("lastSeen", s.LastAccessedAt);
                        w.WriteString("expires", s.ExpiresAt);
                        w.WriteString("device", Device(s));
                        w.WriteEndObject();
                    }

                    w.WriteEndArray();
                }).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            var text = new StringBuilder();
            text.AppendLine(CultureInfo.InvariantCulture, $"{"HANDLE",-22}  {"CREATED",-20}  {"LAST SEEN",-20}  {"EXPIRES",-20}  DEVICE");
            foreach (var s in sessions)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"{s.Handle,-22}  {Date(s.CreatedAt),-20}  {Date(s.LastAccessedAt),-20}  {Date(s.ExpiresAt),-20}  {Device(s)}");
            }

            text.Append(CultureInfo.InvariantCulture, $"{sessions.Count} session(s) of {user}");
            await output.WriteLineAsync(text.ToString()).ConfigureAwait(false);
            return ExitCodes.Ok;
        }

        private async Task<int> ShowAsync(CancellationToken token)
        {
            var session = await FindAsync("show", token).ConfigureAwait(false);
            var attributes = session.Attributes.OrderBy(static a => a.Key, StringComparer.Ordinal).Select(static a => (Name: a.Key, Bytes: a.Value.Length)).ToList();
            if (options.Json)
            {
                await WriteJsonAsync(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("handle", session.Handle);
                    w.WriteString("user", session.Principal);
                    w.WriteString("created", session.CreatedAt);
                    w.WriteString("lastSeen", session.LastAccessedAt);
                    w.WriteString("expires", session.ExpiresAt);
                    w.WriteString("absoluteExpiry", session.AbsoluteExpiresAt);
                    w.WriteNumber("idleTimeoutSeconds", (long)session.IdleTimeout.TotalSeconds);
                    w.WriteNumber("version", session.Version);
                    w.WriteString("device", Device(session));
                    w.WriteStartArray("attributes");
                    foreach (var (name, bytes) in attributes)
                    {
                        w.WriteStartObject();
                        w.WriteString("name", name);
                        w.WriteNumber("bytes", bytes);
                        w.WriteEndObject();
                    }

                    w.WriteEndArray();
                    w.WriteEndObject();
                }).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            var text = new StringBuilder();
            text.AppendLine(CultureInfo.InvariantCulture, $"handle          {session.Handle}");
            text.AppendLine(CultureInfo.InvariantCulture, $"user            {session.Principal}");
            text.AppendLine(CultureInfo.InvariantCulture, $"device          {Device(session)}");
            text.AppendLine(CultureInfo.InvariantCulture, $"created         {Date(session.CreatedAt)}");
            text.AppendLine(CultureInfo.InvariantCulture, $"last seen       {Date(session.LastAccessedAt)}");
            text.AppendLine(CultureInfo.InvariantCulture, $"expires         {Date(session.ExpiresAt)} (idle timeout {session.IdleTimeout:c}, absolute expiry {Date(session.AbsoluteExpiresAt)})");
            text.AppendLine(CultureInfo.InvariantCulture, $"version         {session.Version}");
            text.Append(CultureInfo.InvariantCulture, $"attributes      {attributes.Count}, {attributes.Sum(static a => a.Bytes)} bytes of values");
            foreach (var (name, bytes) in attributes)
            {
                text.AppendLine().Append(CultureInfo.InvariantCulture, $"  {name,-30} {bytes,8} bytes");
            }

            await output.WriteLineAsync(text.ToString()).ConfigureAwait(false);
            return ExitCodes.Ok;
        }

        private async Task<int> RevokeAsync(CancellationToken token)
        {
            var session = await FindAsync("revoke", token).ConfigureAwait(false);
            var handle = session.Handle;
            if (!await store.DeleteByHandleAsync(session.Principal!, handle, token).ConfigureAwait(false))
            {
                throw new NotFoundException($"Session {handle} ended before it could be revoked.");
            }

            await WriteAsync(
                w => { w.WriteNumber("revoked", 1); w.WriteString("handle", handle); },
                $"Revoked session {handle} of {session.Principal}.").ConfigureAwait(false);
            return ExitCodes.Ok;
        }

        private async Task<int> RevokeUserAsync(CancellationToken token)
        {
            Arguments(1);
            var user = options.Arguments[0];
            if (options.User is not null && options.User != user)
            {
                throw new UsageException("revoke-user takes the user as its argument; --user names another one.");
            }

            var revoked = 0;
            foreach (var session in await store.FindByPrincipalAsync(user, token).ConfigureAwait(false))
            {
                if (await store.DeleteByHandleAsync(user, session.Handle, token).ConfigureAwait(false))
                {
                    revoked++;
                }
            }

            await WriteAsync(
                w => w.WriteNumber("revoked", revoked),
                $"Revoked {revoked} session(s) of {user}.").ConfigureAwait(false);
            return revoked == 0 ? ExitCodes.NotFound : ExitCodes.Ok;
        }

        private async Task<int> StatsAsync(CancellationToken token)
        {
            Arguments(0);
            var keys = await _admin.EstimateCountCostAsync(token).ConfigureAwait(false);
            long? count = options.Yes || keys <= options.MaxScan ? await store.CountAsync(token).ConfigureAwait(false) : null;
            var sample = await _admin.SampleAsync(options.Sample, token).ConfigureAwait(false);
            var bytes = sample.SessionBytes.Order().ToList();
            var buckets = Buckets(sample.TimesToLive);
            if (options.Json)
            {
                await WriteJsonAsync(w =>
                {
                    w.WriteStartObject();
                    if (count is { } c)
                    {
                        w.WriteNumber("sessions", c);
                    }
                    else
                    {
                        w.WriteNull("sessions");
                    }

                    w.WriteNumber("countCostEstimate", keys);
                    w.WriteNumber("sampled", bytes.Count);
                    w.WriteNumber("bytesPerSessionMean", bytes.Count == 0 ? 0 : (long)bytes.Average());
                    w.WriteNumber("bytesPerSessionMedian", Percentile(bytes, 0.5));
                    w.WriteNumber("bytesPerSessionP95", Percentile(bytes, 0.95));
                    if (sample.TotalStorageBytes is { } total)
                    {
                        w.WriteNumber("storageBytes", total);
                    }

                    w.WriteStartObject("timeToLive");
                    foreach (var (label, n) in buckets)
                    {
                        w.WriteNumber(label, n);
                    }

                    w.WriteEndObject();
                    w.WriteEndObject();
                }).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            var text = new StringBuilder();
            text.AppendLine(count is { } n2
                ? string.Create(CultureInfo.InvariantCulture, $"sessions            {n2}")
                : string.Create(CultureInfo.InvariantCulture, $"sessions            not counted: the count would examine about {keys} keys/rows (over --max-scan {options.MaxScan}); add --yes to count"));
            text.AppendLine(CultureInfo.InvariantCulture, $"sampled             {bytes.Count} session(s)");
            text.AppendLine(CultureInfo.InvariantCulture, $"bytes per session   mean {(bytes.Count == 0 ? 0 : (long)bytes.Average())}, median {Percentile(bytes, 0.5)}, p95 {Percentile(bytes, 0.95)}");
            if (sample.TotalStorageBytes is { } totalBytes)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"storage             {totalBytes} bytes (tables and indexes)");
            }

            text.Append("time to live");
            foreach (var (label, n) in buckets)
            {
                text.AppendLine().Append(CultureInfo.InvariantCulture, $"  {label,-8} {n,6}");
            }

            await output.WriteLineAsync(text.ToString()).ConfigureAwait(false);
            return ExitCodes.Ok;
        }

        private async Task RefuseLargeScanAsync(string command, CancellationToken token)
        {
            var keys = await _admin.EstimateCountCostAsync(token).ConfigureAwait(false);
            if (keys > options.MaxScan && !options.Yes)
            {
                throw new UsageException(
                    $"{command} would examine about {keys} keys/rows (Redis: SCAN of every master), more than --max-scan {options.MaxScan}. " +
                    "Add --yes to run it anyway, raise --max-scan, or count one user with --user.");
            }
        }

        private async Task<SessionSnapshot> FindAsync(string command, CancellationToken token)
        {
            Arguments(1);
            var handle = options.Arguments[0];
            var user = options.User ?? throw new UsageException(
                $"{command} <handle> needs --user <user>: a handle is a one-way hash of the session id, so the store cannot look it up " +
                "directly; the tool searches the user's sessions (one index read) rather than scanning every session.");
            foreach (var session in await store.FindByPrincipalAsync(user, token).ConfigureAwait(false))
            {
                if (string.Equals(session.Handle, handle, StringComparison.Ordinal))
                {
                    return session;
                }
            }

            throw new NotFoundException($"No live session {handle} of {user}.");
        }

        private string User(string command)
            => options.User ?? throw new UsageException($"{command} needs --user <user>.");

        private void Arguments(int count)
        {
            if (options.Arguments.Count != count)
            {
                throw new UsageException($"{options.Command} takes {count} argument(s), got {options.Arguments.Count}.");
            }
        }

        private Task WriteAsync(Action<Utf8JsonWriter> json, string human)
            => options.Json
                ? WriteJsonAsync(w => { w.WriteStartObject(); json(w); w.WriteEndObject(); })
                : output.WriteLineAsync(human);

        private async Task WriteJsonAsync(Action<Utf8JsonWriter> write)
        {
            using var buffer = new MemoryStream();
            using (var writer = new Utf8JsonWriter(buffer, JsonOptions))
            {
                write(writer);
            }

            await output.WriteLineAsync(Encoding.UTF8.GetString(buffer.ToArray())).ConfigureAwait(false);
        }

        private static string Device(SessionSnapshot session)
            => DeviceNames.Of(session);

        private static string Date(DateTimeOffset value) => value.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

        private static long Percentile(List<long> sorted, double p)
            => sorted.Count == 0 ? 0 : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

        private static List<(string Label, int Count)> Buckets(IReadOnlyList<TimeSpan> ttls)
        {
            (string Label, TimeSpan Below)[] edges =
            [
                ("<1m", TimeSpan.FromMinutes(1)),
                ("1-5m", TimeSpan.FromMinutes(5)),
                ("5-15m", TimeSpan.FromMinutes(15)),
                ("15-60m", TimeSpan.FromHours(1)),
                ("1-6h", TimeSpan.FromHours(6)),
                ("6-24h", TimeSpan.FromDays(1)),
                (">=1d", TimeSpan.MaxValue),
            ];
            var counts = new int[edges.Length];
            foreach (var ttl in ttls)
            {
                counts[Array.FindIndex(edges, e => ttl < e.Below)]++;
            }

            return [.. edges.Select((e, i) => (e.Label, counts[i]))];
        }
    }
}
