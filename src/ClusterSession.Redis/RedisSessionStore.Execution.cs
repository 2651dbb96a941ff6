using System.Globalization;
using System.Runtime.ExceptionServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ClusterSession.Redis;
/// <content>Running commands: one deadline per operation, retries of commands Redis did not run, writes that wait for replicas, and the one catch.</content>
public sealed partial class RedisSessionStore
{
    /// <summary>
    /// Runs one store operation, every round trip and every retry of it, under the store's deadline
    /// (<see cref="SessionStoreOperations"/>), after reading the store's layout on first use; every way Redis can fail
    /// becomes <see cref="SessionStoreUnavailableException"/> through <see cref="RedisFailures.Classifier"/>.
    /// </summary>
    private ValueTask<TResult> RunAsync<TState, TResult>(string operation, TState state, Func<TState, CancellationToken, Task<TResult>> body, CancellationToken cancellationToken)
        => Volatile.Read(ref _layout) != (int)RedisLayout.Unknown
            ? _operations.RunAsync(operation, state, body, cancellationToken)
            : _operations.RunAsync(
                operation,
                (Store: this, State: state, Body: body),
                static async (s, token) =>
                {
                    if (Volatile.Read(ref s.Store._layout) == (int)RedisLayout.Unknown)
                    {
                        // First use: read which layout the store is on (docs/redis-data-model.md, "Layouts").
                        await s.Store.EnsureLayoutAsync(token).ConfigureAwait(false);
                    }

                    return await s.Body(s.State, token).ConfigureAwait(false);
                },
                cancellationToken);

    /// <summary>
    /// One command (or pipelined batch) on the store's connection, ended by <paramref name="token"/> (the operation's
    /// one deadline). A command Redis certainly did not run (refused by a replica or a loading node, redirected, no
    /// primary known yet) makes the connection re-discover the topology and is sent again until the deadline, but only
    /// while some node is connected: with nothing connected, Redis is down and the command fails at once.
    /// </summary>
    private async Task<TResult> CommandAsync<TState, TResult>(Func<IDatabase, TState, Task<TResult>> command, TState state, CancellationToken token)
    {
        for (var attempt = 1; ; attempt++)
        {
            var multiplexer = await _connection.GetAsync(token).ConfigureAwait(false);
            if (_evictionPolicyChecked == 0 && Interlocked.Exchange(ref _evictionPolicyChecked, 1) == 0)
            {
                _ = RedisEvictionPolicyCheck.WarnIfUnfitAsync(multiplexer, _logger);
            }

            try
            {
                if (_near is { } near)
                {
                    await near.EnsureStartedAsync(multiplexer, token).ConfigureAwait(false);
                }

                // StackExchange.Redis cannot recall a command once written; its own AsyncTimeout (set to OperationTimeout
                // on connections the store creates) completes one the deadline abandoned.
                return await SessionStoreOperations.WithinAsync(command(multiplexer.GetDatabase(), state), token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ShouldRetry(ex, multiplexer))
            {
                try
                {
                    await Task.Delay(RetryDelay(attempt), token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // The deadline passed while waiting to retry: the failure to report is the command's, not the wait's.
                    ExceptionDispatchInfo.Throw(ex);
                }
            }
        }
    }

    private bool ShouldRetry(Exception ex, IConnectionMultiplexer multiplexer)
    {
        if (RedisFailures.TopologyChanged(ex))
        {
            _topology.Request(multiplexer, ex);
        }

        return RedisFailures.NotApplied(ex) && multiplexer.IsConnected;
    }

    // 20, 40, 80 ... ms, at most 250 ms: a failover settles in seconds, and the deadline ends the retries.
    private static TimeSpan RetryDelay(int attempt) => TimeSpan.FromMilliseconds(Math.Min(250, 10 << Math.Min(attempt, 5)));

    /// <summary>A write script on the primary, followed by WAIT in the same round trip when <see cref="RedisSessionStoreOptions.WaitForReplicas"/> asks for it.</summary>
    private Task<RedisResult> WriteAsync(string script, RedisKey key, RedisValue[] args, CancellationToken token)
        => WriteAsync(script, [key], args, token);

    /// <summary><see cref="WriteAsync(string, RedisKey, RedisValue[], CancellationToken)"/> on keys of one slot (a session's keys in both layouts).</summary>
    private Task<RedisResult> WriteAsync(string script, RedisKey[] keys, RedisValue[] args, CancellationToken token)
        => CommandAsync(
            static (db, s) => s.Wait is { } wait ? wait.EvaluateAsync(db, s.Script, s.Keys, s.Args) : db.ScriptEvaluateAsync(s.Script, s.Keys, s.Args, Primary),
            (Wait: _replicaWait, Script: script, Keys: keys, Args: args),
            token);
}
