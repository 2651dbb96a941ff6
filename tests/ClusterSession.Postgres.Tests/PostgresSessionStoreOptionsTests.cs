using ClusterSession.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ClusterSession.Postgres.Tests;

public sealed class PostgresSessionStoreOptionsTests
{
    private const string ConnectionString = "Host=127.0.0.1;Port=1;Username=app";

    public static TheoryData<string, Action<PostgresSessionStoreOptions>> InvalidOptions => new()
    {
        { "set ConnectionString", o => o.ConnectionString = null },
        { "not both", o => o.DataSource = Npgsql.NpgsqlDataSource.Create(ConnectionString) },
        { "not a valid Npgsql connection string", o => o.ConnectionString = "Nonsense Keyword=1" },
        { "Schema", o => o.Schema = "" },
        { "Schema", o => o.Schema = new string('s', 64) },
        { "TablePrefix", o => o.TablePrefix = new string('p', 41) },
        { "TablePrefix", o => o.TablePrefix = "a\0b" },
        { "TouchIntervalFraction", o => o.TouchIntervalFraction = 0.9 },
        { "TouchIntervalFraction", o => o.TouchIntervalFraction = double.NaN },
        { "CleanupInterval", o => o.CleanupInterval = TimeSpan.Zero },
        { "CleanupBatchSize", o => o.CleanupBatchSize = 0 },
        { "CommandTimeout", o => o.CommandTimeout = TimeSpan.FromMilliseconds(10) },
        { "Limits", o => o.Limits = null! },
        { "NearCache.Enabled", o => (o.ConnectionString, o.NearCache.Enabled) = (ConnectionString + ";Multiplexing=true", true) },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void Invalid_options_are_rejected_with_a_message_naming_the_option(string expected, Action<PostgresSessionStoreOptions> breakIt)
    {
        var options = new PostgresSessionStoreOptions { ConnectionString = ConnectionString };
        breakIt(options);

        var error = Assert.Throws<OptionsValidationException>(() => new PostgresSessionStore(options));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Valid_options_create_a_store_without_connecting()
    {
        await using var store = new PostgresSessionStore(new PostgresSessionStoreOptions
        {
            ConnectionString = ConnectionString,
            Schema = "Sessions \"Schema\"",
            TablePrefix = "",
            CleanupInterval = Timeout.InfiniteTimeSpan,
        });

        Assert.Equal("\"Sessions \"\"Schema\"\"\".\"sessions\"", store.SessionsTableName);
    }

    [Fact]
    public async Task UsePostgres_creates_the_postgres_store()
    {
        var builder = new TestSessionStoreBuilder();
        builder.UsePostgres(o =>
        {
            o.ConnectionString = ConnectionString;
            o.CleanupInterval = Timeout.InfiniteTimeSpan;
        });

        await using var store = Assert.IsType<PostgresSessionStore>(builder.CreateStore());
    }

    [Fact]
    public void UsePostgres_validates_options_with_clear_messages()
    {
        var builder = new TestSessionStoreBuilder().UsePostgres(o => o.CleanupBatchSize = -1);

        var error = Assert.Throws<OptionsValidationException>(() => builder.CreateStore());

        Assert.Contains("ConnectionString", error.Message, StringComparison.Ordinal);
        Assert.Contains("CleanupBatchSize", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UsePostgres_refuses_limits_other_than_the_hosts()
    {
        var builder = new TestSessionStoreBuilder().UsePostgres(o =>
        {
            o.ConnectionString = ConnectionString;
            o.Limits = new SessionLimits { MaxValueBytes = 10 };
        });

        var error = Assert.Throws<OptionsValidationException>(() => builder.CreateStore());

        Assert.Contains("PostgresSessionStoreOptions.Limits", error.Message, StringComparison.Ordinal);
    }
}
