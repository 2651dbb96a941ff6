using Npgsql;
using NpgsqlTypes;

namespace ClusterSession.Postgres;

/// <summary>Typed parameters and batch commands for the store's statements.</summary>
internal static class PostgresParameters
{
    public static readonly string[] NoNames = [];
    private static readonly byte[][] NoValues = [];

    public static NpgsqlBatchCommand Command(string sql, params ReadOnlySpan<NpgsqlParameter> parameters)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(parameter);
        }

        return command;
    }

    public static NpgsqlParameter<string> Text(string value) => new() { TypedValue = value };

    public static NpgsqlParameter NullableText(string? value)
        => new() { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)value ?? DBNull.Value };

    public static NpgsqlParameter NullableBytea(byte[]? value)
        => new() { NpgsqlDbType = NpgsqlDbType.Bytea, Value = (object?)value ?? DBNull.Value };

    public static NpgsqlParameter TextArray(string[] value)
        => new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = value };

    public static NpgsqlParameter ByteaArray(byte[][] value)
        => new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea, Value = value };

    /// <summary>
    /// The clock parameter of every statement: null, so the statement reads the database's clock (<c>now()</c>), unless
    /// the store was given a test clock (a <see cref="TimeProvider"/> other than the system's), whose time it sends.
    /// </summary>
    public static NpgsqlParameter Clock(TimeProvider time)
        => new() { NpgsqlDbType = NpgsqlDbType.TimestampTz, Value = ReferenceEquals(time, TimeProvider.System) ? DBNull.Value : time.GetUtcNow().ToUniversalTime() };

    public static NpgsqlParameter<int> Int(int value) => new() { TypedValue = value };

    public static NpgsqlParameter<long> Long(long value) => new() { TypedValue = value };

    public static NpgsqlParameter<double> Double(double value) => new() { TypedValue = value };

    public static NpgsqlParameter<bool> Bool(bool value) => new() { TypedValue = value };

    // Written as microseconds only (no days part), so timestamp arithmetic never depends on the session time zone.
    public static NpgsqlParameter<NpgsqlInterval> Interval(TimeSpan value) => new() { TypedValue = ToInterval(value) };

    public static NpgsqlParameter NullableInterval(TimeSpan? value)
        => new() { NpgsqlDbType = NpgsqlDbType.Interval, Value = value is { } v ? ToInterval(v) : DBNull.Value };

    /// <summary>Attribute names and values as two parallel arrays (how the statements take them).</summary>
    public static (string[] Names, byte[][] Values) Split(IReadOnlyDictionary<string, byte[]> attributes)
    {
        if (attributes.Count == 0)
        {
            return (NoNames, NoValues);
        }

        var names = new string[attributes.Count];
        var values = new byte[attributes.Count][];
        var i = 0;
        foreach (var (name, value) in attributes)
        {
            names[i] = name;
            values[i] = value;
            i++;
        }

        return (names, values);
    }

    private static NpgsqlInterval ToInterval(TimeSpan value) => new(0, 0, value.Ticks / TimeSpan.TicksPerMicrosecond);
}
