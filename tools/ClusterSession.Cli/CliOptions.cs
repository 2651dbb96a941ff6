using System.Globalization;

namespace ClusterSession.Cli;

/// <summary>The parsed command line: one command, its arguments, and the store to run it on.</summary>
internal sealed class CliOptions
{
    public const int DefaultMaxScan = 100_000;
    public const int DefaultSample = 200;

    public string Command { get; private set; } = "";

    public List<string> Arguments { get; } = [];

    public string? Redis { get; private set; }

    public string? KeyPrefix { get; private set; }

    public string? Postgres { get; private set; }

    public string? Schema { get; private set; }

    public string? TablePrefix { get; private set; }

    public string? User { get; private set; }

    public bool Json { get; private set; }

    public bool Yes { get; private set; }

    public bool Help { get; private set; }

    public long MaxScan { get; private set; } = DefaultMaxScan;

    public int Sample { get; private set; } = DefaultSample;

    /// <summary>Parses <paramref name="args"/>; throws <see cref="UsageException"/> with what is wrong.</summary>
    public static CliOptions Parse(IReadOnlyList<string> args)
    {
        var options = new CliOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            switch (arg)
            {
                case "--redis": options.Redis = Value(args, ref i); break;
                case "--key-prefix": options.KeyPrefix = Value(args, ref i); break;
                case "--postgres": options.Postgres = Value(args, ref i); break;
                case "--schema": options.Schema = Value(args, ref i); break;
                case "--table-prefix": options.TablePrefix = Value(args, ref i); break;
                case "--user": options.User = Value(args, ref i); break;
                case "--json": options.Json = true; break;
                case "--yes": options.Yes = true; break;
                case "--help" or "-h": options.Help = true; break;
                case "--max-scan": options.MaxScan = Number(args, ref i, 0, long.MaxValue); break;
                case "--sample": options.Sample = (int)Number(args, ref i, 1, 10_000); break;
                default:
                    if (arg.StartsWith("--", StringComparison.Ordinal))
                    {
                        throw new UsageException($"Unknown option {arg}.");
                    }

                    if (options.Command.Length == 0)
                    {
                        options.Command = arg;
                    }
                    else
                    {
                        options.Arguments.Add(arg);
                    }

                    break;
            }
        }

        if (options.Help || options.Command is "help")
        {
            options.Help = true;
            return options;
        }

        if (options.Command.Length == 0)
        {
            throw new UsageException("No command given.");
        }

        if ((options.Redis is null) == (options.Postgres is null))
        {
            throw new UsageException("Name one store: --redis <configuration> or --postgres <connection string>.");
        }

        if (options.Redis is not null && (options.Schema is not null || options.TablePrefix is not null))
        {
            throw new UsageException("--schema and --table-prefix are PostgreSQL options; with --redis use --key-prefix.");
        }

        if (options.Postgres is not null && options.KeyPrefix is not null)
        {
            throw new UsageException("--key-prefix is a Redis option; with --postgres use --schema and --table-prefix.");
        }

        return options;
    }

    private static string Value(IReadOnlyList<string> args, ref int i)
    {
        if (i + 1 >= args.Count)
        {
            throw new UsageException($"{args[i]} needs a value.");
        }

        return args[++i];
    }

    private static long Number(IReadOnlyList<string> args, ref int i, long min, long max)
    {
        var name = args[i];
        var text = Value(args, ref i);
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new UsageException($"{name} needs a whole number from {min} to {max}.");
    }
}

/// <summary>A command line that cannot run as written; the message says what to change.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>A session or user that is not in the store.</summary>
internal sealed class NotFoundException(string message) : Exception(message);
