using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace ClusterSession.Testing.Logging;

/// <summary>One captured log entry: everything a log sink could write.</summary>
/// <param name="Category">The logger's category.</param>
/// <param name="Level">The level.</param>
/// <param name="EventId">The event id.</param>
/// <param name="Message">The formatted message.</param>
/// <param name="State">The structured values, as "name=value" lines.</param>
/// <param name="Exception">The exception's full text (messages, inner exceptions, stack), or null.</param>
public sealed record LogEntry(string Category, LogLevel Level, EventId EventId, string Message, string State, string? Exception)
{
    /// <summary>All the text of the entry, as a sink would store it.</summary>
    public string AllText => $"{Category} {EventId} {Message}\n{State}\n{Exception}";
}

/// <summary>
/// A list-backed logger provider for tests: every entry of every category, at every level, in order.
/// Pass <see cref="CreateLogger{T}"/> to a store, or register the provider with a host's logging.
/// </summary>
public sealed class ListLoggerProvider : ILoggerProvider
{
    private readonly ConcurrentQueue<LogEntry> _entries = new();

    /// <summary>The entries so far.</summary>
    public IReadOnlyList<LogEntry> Entries => [.. _entries];

    /// <inheritdoc />
    public ILogger CreateLogger(string categoryName) => new ListLogger(categoryName, _entries);

    /// <summary>A typed logger that writes here.</summary>
    public ILogger<T> CreateLogger<T>() => new TypedListLogger<T>(new ListLogger(typeof(T).FullName ?? typeof(T).Name, _entries));

    /// <inheritdoc />
    public void Dispose()
    {
    }

    private sealed class ListLogger(string category, ConcurrentQueue<LogEntry> entries) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var values = state is IEnumerable<KeyValuePair<string, object?>> pairs
                ? string.Join("\n", pairs.Select(p => $"{p.Key}={p.Value}"))
                : string.Empty;
            entries.Enqueue(new LogEntry(category, logLevel, eventId, formatter(state, exception), values, exception?.ToString()));
        }
    }

    private sealed class TypedListLogger<T>(ILogger inner) : ILogger<T>
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => inner.Log(logLevel, eventId, state, exception, formatter);
    }
}
