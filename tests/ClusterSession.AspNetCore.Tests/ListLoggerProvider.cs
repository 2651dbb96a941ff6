using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace ClusterSession.AspNetCore.Tests;

/// <summary>Keeps every log entry of every category in a list, with its exception, to assert on what was logged.</summary>
internal sealed class ListLoggerProvider : ILoggerProvider
{
    private readonly ConcurrentQueue<LogEntry> _entries = new();

    public IReadOnlyList<LogEntry> Entries => [.. _entries];

    public ILogger CreateLogger(string categoryName) => new ListLogger(this, categoryName);

    public void Clear() => _entries.Clear();

    public void Dispose()
    {
    }

    private sealed class ListLogger(ListLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            // The state's values too, not only the formatted message: a structured sink would store them.
            var values = state is IEnumerable<KeyValuePair<string, object?>> pairs ? string.Join(" ", pairs.Select(p => p.Key + "=" + p.Value)) : string.Empty;
            provider._entries.Enqueue(new LogEntry(category, logLevel, eventId, formatter(state, exception) + " " + values, exception?.ToString()));
        }
    }
}

internal sealed record LogEntry(string Category, LogLevel Level, EventId EventId, string Message, string? Exception)
{
    public string Text => $"{Category} {Level} {EventId} {Message} {Exception}";
}
