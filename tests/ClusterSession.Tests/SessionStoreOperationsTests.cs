namespace ClusterSession.Tests;

/// <summary>The store-operation helper every store runs its operations through: deadline, cancellation, translation.</summary>
public sealed class SessionStoreOperationsTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(30);

    private sealed class Classifier : IStoreFailureClassifier
    {
        public Exception? Classify(Exception exception, string operation, TimeSpan elapsed) => exception switch
        {
            IOException => SessionStoreUnavailableException.Refused("Test", operation, exception),
            _ => null,
        };
    }

    private static SessionStoreOperations Operations(TimeSpan timeout) => new("Test", timeout, "TestOptions.Timeout", new Classifier());

    [Fact]
    public async Task An_operation_that_outlives_the_deadline_is_a_timeout_naming_the_setting_even_when_the_driver_ignores_the_token()
    {
        var never = new TaskCompletionSource<int>();
        var error = await Assert.ThrowsAsync<SessionStoreUnavailableException>(
            () => Operations(TimeSpan.FromMilliseconds(50)).RunAsync("load", never, static (t, _) => t.Task, CancellationToken.None).AsTask());

        Assert.Contains("did not complete a load within 50 ms", error.Message, StringComparison.Ordinal);
        Assert.Contains("TestOptions.Timeout", error.Message, StringComparison.Ordinal);

        // The abandoned call fails later; its failure is observed, never unobserved.
        never.SetException(new IOException("late"));
    }

    [Fact]
    public async Task The_callers_cancellation_is_an_operation_canceled_exception_for_its_token_whatever_the_driver_threw()
    {
        using var caller = new CancellationTokenSource();
        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Operations(Long).RunAsync<CancellationTokenSource, int>(
            "save",
            caller,
            static async (c, _) =>
            {
                await c.CancelAsync();
                throw new IOException("connection reset while cancelling");
            },
            caller.Token).AsTask());

        Assert.Equal(caller.Token, error.CancellationToken);
    }

    [Fact]
    public async Task A_driver_failure_goes_through_the_stores_classifier_and_anything_it_does_not_classify_goes_through_unchanged()
    {
        var operations = Operations(Long);
        var outage = await Assert.ThrowsAsync<SessionStoreUnavailableException>(
            () => operations.RunAsync<int, int>("delete", 0, static (_, _) => Task.FromException<int>(new IOException("refused")), CancellationToken.None).AsTask());
        Assert.IsType<IOException>(outage.InnerException);
        Assert.Contains("could not be reached during a delete", outage.Message, StringComparison.Ordinal);

        var bug = new InvalidOperationException("a bug");
        Assert.Same(bug, await Assert.ThrowsAsync<InvalidOperationException>(
            () => operations.RunAsync<int, int>("delete", 0, (_, _) => Task.FromException<int>(bug), CancellationToken.None).AsTask()));
    }

    [Fact]
    public async Task An_operation_in_time_returns_its_result()
        => Assert.Equal(42, await Operations(Long).RunAsync("count", 41, static (n, _) => Task.FromResult(n + 1), CancellationToken.None));
}
