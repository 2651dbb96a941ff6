using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace ClusterSession.Bench;

/// <summary>
/// A TCP proxy that delays every chunk, in each direction, by half the configured round trip,
/// as if Redis were on another host. Task.Delay and timers tick at ~1 ms on Linux, far too coarse
/// for 0.25 ms, so chunks go into one timestamp-ordered queue that a dedicated thread releases:
/// it sleeps while the head is far from due (whole milliseconds with Thread.Sleep, then a
/// microsecond usleep on Linux) and yields for the last ~100 µs. All chunks get the
/// same delay, so arrival order is due order and bytes never overtake each other.
/// It also counts what the apps send to the server: bytes and requests (what a request is depends
/// on the protocol: <see cref="RespCommandCounter"/> for Redis, <see cref="PostgresRoundTripCounter"/> for PostgreSQL).
/// </summary>
internal sealed class LatencyProxy : IAsyncDisposable
{
    private static readonly long SleepThresholdTicks = Stopwatch.Frequency * 15 / 10_000; // 1.5 ms
    private static readonly long SpinThresholdTicks = Stopwatch.Frequency / 8_000; // 125 µs
    private static readonly long TicksPerMicrosecond = Stopwatch.Frequency / 1_000_000;

    private readonly TcpListener _listener;
    private readonly IPEndPoint _upstream;
    private readonly long _delayTicks;
    private readonly ConcurrentQueue<Chunk> _queue = new();
    private readonly ManualResetEventSlim _signal = new(false);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentBag<Socket> _sockets = [];
    private readonly Thread _pump;
    private readonly Task _acceptLoop;
    private readonly Func<IWireCounter> _counterFactory;
    private long _bytesToServer;
    private long _commandsToServer;

    public LatencyProxy(IPEndPoint upstream, double roundTripMs, Func<IWireCounter>? counterFactory = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(roundTripMs);
        _upstream = upstream;
        _counterFactory = counterFactory ?? (static () => new RespCommandCounter());
        _delayTicks = (long)(roundTripMs / 2 / 1000 * Stopwatch.Frequency);
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start(512);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _pump = new Thread(Pump) { IsBackground = true, Name = "latency-proxy-pump", Priority = ThreadPriority.AboveNormal };
        _pump.Start();
        _acceptLoop = AcceptLoopAsync();
    }

    public int Port { get; }

    /// <summary>Bytes sent from the apps to the server so far.</summary>
    public long BytesToServer => Interlocked.Read(ref _bytesToServer);

    /// <summary>
    /// Requests sent from the apps to the server so far: top-level RESP commands for Redis (a script call is one),
    /// round trips (Sync or simple Query messages) for PostgreSQL.
    /// </summary>
    public long CommandsToServer => Interlocked.Read(ref _commandsToServer);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        foreach (var socket in _sockets)
        {
            socket.Dispose();
        }

        _signal.Set();
        _pump.Join(TimeSpan.FromSeconds(2));
        try
        {
            await _acceptLoop;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            client.NoDelay = true;
            var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await server.ConnectAsync(_upstream, _stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException)
            {
                client.Dispose();
                server.Dispose();
                continue;
            }

            _sockets.Add(client);
            _sockets.Add(server);
            var counter = _counterFactory();
            _ = ForwardAsync(client, server, counter);
            _ = ForwardAsync(server, client, counter, fromServer: true);
        }
    }

    private async Task ForwardAsync(Socket from, Socket to, IWireCounter counter, bool fromServer = false)
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
                var read = await from.ReceiveAsync(buffer.AsMemory(), SocketFlags.None, _stop.Token);
                if (read == 0)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    _queue.Enqueue(new Chunk(Stopwatch.GetTimestamp() + _delayTicks, to, null, 0));
                    _signal.Set();
                    return;
                }

                if (fromServer)
                {
                    counter.ServerAnswered();
                }
                else
                {
                    Interlocked.Add(ref _bytesToServer, read);
                    var commands = counter.Count(buffer.AsSpan(0, read));
                    if (commands > 0)
                    {
                        Interlocked.Add(ref _commandsToServer, commands);
                    }
                }

                _queue.Enqueue(new Chunk(Stopwatch.GetTimestamp() + _delayTicks, to, buffer, read));
                _signal.Set();
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            _queue.Enqueue(new Chunk(Stopwatch.GetTimestamp(), to, null, 0));
            _signal.Set();
        }
    }

    private void Pump()
    {
        while (!_stop.IsCancellationRequested)
        {
            _signal.Reset();
            if (!_queue.TryPeek(out var head))
            {
                _signal.Wait(100);
                continue;
            }

            var remaining = head.DueTimestamp - Stopwatch.GetTimestamp();
            if (remaining > SleepThresholdTicks)
            {
                Thread.Sleep(1);
                continue;
            }

            if (remaining > SpinThresholdTicks && OperatingSystem.IsLinux())
            {
                // Linux wakes a usleep ~50-60 µs late (timer slack), so leave that margin to the yield loop.
                _ = NativeMethods.usleep((uint)((remaining - SpinThresholdTicks) / TicksPerMicrosecond) + 25);
                continue;
            }

            if (remaining > 0)
            {
                Thread.Yield();
                continue;
            }

            _queue.TryDequeue(out _);
            Deliver(head);
        }
    }

    private static void Deliver(Chunk chunk)
    {
        try
        {
            if (chunk.Buffer is null)
            {
                chunk.Destination.Shutdown(SocketShutdown.Send);
                return;
            }

            var sent = 0;
            while (sent < chunk.Length)
            {
                sent += chunk.Destination.Send(chunk.Buffer, sent, chunk.Length - sent, SocketFlags.None);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The peer went away; its reader closes the other side.
        }
        finally
        {
            if (chunk.Buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(chunk.Buffer);
            }
        }
    }

    private readonly record struct Chunk(long DueTimestamp, Socket Destination, byte[]? Buffer, int Length);
}

internal static partial class NativeMethods
{
    [System.Runtime.InteropServices.DllImport("libc", SetLastError = false)]
    [System.Runtime.InteropServices.DefaultDllImportSearchPaths(System.Runtime.InteropServices.DllImportSearchPath.SafeDirectories)]
    internal static extern int usleep(uint microseconds);

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = false)]
    [System.Runtime.InteropServices.DefaultDllImportSearchPaths(System.Runtime.InteropServices.DllImportSearchPath.SafeDirectories)]
    internal static extern long sysconf(int name);
}

/// <summary>Counts requests in one connection's client-to-server byte stream, which arrives in arbitrary chunks.</summary>
internal interface IWireCounter
{
    /// <summary>Consumes the next chunk; returns how many requests it completed.</summary>
    int Count(ReadOnlySpan<byte> data);

    /// <summary>Bytes came back from the server on this connection.</summary>
    void ServerAnswered()
    {
    }
}

/// <summary>
/// Counts round trips in a PostgreSQL frontend byte stream: the untyped startup packets first
/// (SSLRequest, GSSENCRequest, StartupMessage: int32 length then int32 code), then typed messages
/// (one byte type, int32 length including itself). A round trip ends with Sync ('S', the end of an
/// extended-protocol pipeline or batch) or is a simple Query ('Q'); the startup counts as none.
/// Several of them sent before the server answers anything travel together and wait once, so they
/// count as one round trip (Npgsql prepends its connection-reset Query to the next command this way).
/// </summary>
internal sealed class PostgresRoundTripCounter : IWireCounter
{
    private const int SslRequestCode = 80877103;
    private const int GssEncRequestCode = 80877104;
    private readonly byte[] _header = new byte[8];
    private bool _startup = true;
    private int _headerFill;
    private long _skip;
    private volatile bool _answered = true;

    public void ServerAnswered() => _answered = true;

    public int Count(ReadOnlySpan<byte> data)
    {
        var roundTrips = 0;
        var i = 0;
        while (i < data.Length)
        {
            if (_skip > 0)
            {
                var take = (int)Math.Min(_skip, data.Length - i);
                _skip -= take;
                i += take;
                continue;
            }

            var headerLength = _startup ? 8 : 5;
            var copy = Math.Min(headerLength - _headerFill, data.Length - i);
            data.Slice(i, copy).CopyTo(_header.AsSpan(_headerFill));
            _headerFill += copy;
            i += copy;
            if (_headerFill < headerLength)
            {
                break;
            }

            _headerFill = 0;
            if (_startup)
            {
                var length = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(_header);
                var code = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(_header.AsSpan(4));
                _startup = code is SslRequestCode or GssEncRequestCode;
                _skip = length - 8;
            }
            else
            {
                var type = _header[0];
                var length = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(_header.AsSpan(1));
                _skip = length - 4;
                if (type is (byte)'S' or (byte)'Q' && _answered)
                {
                    _answered = false;
                    roundTrips++;
                }
            }
        }

        return roundTrips;
    }
}

/// <summary>
/// Counts round trips in a client-to-server RESP byte stream that arrives in arbitrary chunks: complete top-level
/// commands (multi-bulk arrays, what every client library sends, and inline commands), except that a command on the
/// same key as the command before it is not counted again when both came in one chunk or no answer from the server
/// came in between. Inferred from bytes, so an exact figure of 1 can read slightly above 1 on a busy multiplexed
/// connection (another request's answer arriving between the two halves of a load split across reads). A client that writes several commands
/// on one key together (a script and a read pipelined beside it; HSET and EXPIRE) waits for them once, so they are
/// one round trip; commands of different requests that share a multiplexed connection name different keys and
/// stay separate. The key is the first argument, or for EVAL/EVALSHA the first key after the key count.
/// </summary>
internal sealed class RespCommandCounter : IWireCounter
{
    private const int MaxKeyBytes = 256;
    private readonly byte[] _name = new byte[8];
    private readonly byte[] _key = new byte[MaxKeyBytes];
    private readonly byte[] _previousKey = new byte[MaxKeyBytes];
    private State _state = State.Start;
    private long _number;
    private long _bulksLeft;
    private long _skip;
    private long _bodyLength;
    private long _bodyRead;
    private int _bulkIndex;
    private int _keyIndex;
    private int _nameLength;
    private int _keyLength;
    private int _previousKeyLength = -1;

    private enum State
    {
        Start,
        ArrayLength,
        BulkHeader,
        BulkLength,
        BulkBody,
        Inline,
    }

    private volatile bool _answered;

    /// <summary>An answer came back: a command in a later chunk is a new round trip whatever its key.</summary>
    public void ServerAnswered() => _answered = true;

    public int Count(ReadOnlySpan<byte> data)
    {
        // Commands split across chunks share a round trip unless the server answered in between.
        if (_answered)
        {
            _answered = false;
            _previousKeyLength = -1;
        }

        var commands = 0;
        var i = 0;
        while (i < data.Length)
        {
            var b = data[i];
            switch (_state)
            {
                case State.Start:
                    if (b == (byte)'*')
                    {
                        _state = State.ArrayLength;
                        _number = 0;
                    }
                    else if (b is not ((byte)'\r' or (byte)'\n'))
                    {
                        _state = State.Inline;
                    }

                    i++;
                    break;
                case State.ArrayLength:
                    if (b == (byte)'\n')
                    {
                        _bulksLeft = _number;
                        _bulkIndex = 0;
                        _nameLength = 0;
                        _keyLength = -1;
                        _keyIndex = 1;
                        _state = _bulksLeft <= 0 ? State.Start : State.BulkHeader;
                    }
                    else if (b is >= (byte)'0' and <= (byte)'9')
                    {
                        _number = (_number * 10) + (b - '0');
                    }

                    i++;
                    break;
                case State.BulkHeader:
                    _state = State.BulkLength; // the '$'
                    _number = 0;
                    i++;
                    break;
                case State.BulkLength:
                    if (b == (byte)'\n')
                    {
                        _bodyLength = _number;
                        _bodyRead = 0;
                        _skip = _number + 2;
                        _state = State.BulkBody;
                        if (_bulkIndex == _keyIndex)
                        {
                            _keyLength = _number <= MaxKeyBytes ? 0 : -1;
                        }
                    }
                    else if (b is >= (byte)'0' and <= (byte)'9')
                    {
                        _number = (_number * 10) + (b - '0');
                    }

                    i++;
                    break;
                case State.BulkBody:
                    var take = (int)Math.Min(_skip, data.Length - i);
                    Capture(data.Slice(i, (int)Math.Min(take, Math.Max(0, _bodyLength - _bodyRead))));
                    _bodyRead += take;
                    _skip -= take;
                    i += take;
                    if (_skip == 0)
                    {
                        if (_bulkIndex == 0 && IsScriptCall())
                        {
                            _keyIndex = 3;
                        }

                        _bulkIndex++;
                        if (--_bulksLeft == 0)
                        {
                            commands += CompleteCommand();
                            _state = State.Start;
                        }
                        else
                        {
                            _state = State.BulkHeader;
                        }
                    }

                    break;
                case State.Inline:
                    if (b == (byte)'\n')
                    {
                        commands++;
                        _previousKeyLength = -1;
                        _state = State.Start;
                    }

                    i++;
                    break;
            }
        }

        return commands;
    }

    private void Capture(ReadOnlySpan<byte> body)
    {
        if (_bulkIndex == 0)
        {
            var room = Math.Min(body.Length, _name.Length - _nameLength);
            body[..room].CopyTo(_name.AsSpan(_nameLength));
            _nameLength += room;
        }
        else if (_bulkIndex == _keyIndex && _keyLength >= 0)
        {
            body.CopyTo(_key.AsSpan(_keyLength));
            _keyLength += body.Length;
        }
    }

    private bool IsScriptCall()
    {
        var name = _name.AsSpan(0, Math.Min(_nameLength, (int)_bodyLength));
        return (_bodyLength == 4 || _bodyLength == 7)
            && (System.Text.Ascii.EqualsIgnoreCase(name, "EVAL"u8) || System.Text.Ascii.EqualsIgnoreCase(name, "EVALSHA"u8));
    }

    /// <summary>1 when the command starts a round trip, 0 when it rides on the one before (same key, same chunk).</summary>
    private int CompleteCommand()
    {
        var key = _key.AsSpan(0, Math.Max(0, _keyLength));
        var sameRoundTrip = _keyLength >= 0 && _previousKeyLength == _keyLength && key.SequenceEqual(_previousKey.AsSpan(0, _previousKeyLength));
        if (_keyLength >= 0)
        {
            key.CopyTo(_previousKey);
        }

        _previousKeyLength = _keyLength;
        return sameRoundTrip ? 0 : 1;
    }
}
