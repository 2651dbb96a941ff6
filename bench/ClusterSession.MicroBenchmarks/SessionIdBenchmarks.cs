using BenchmarkDotNet.Attributes;

namespace ClusterSession.MicroBenchmarks;

/// <summary>
/// Id generation (every new session), validation (every request with a cookie) and the digest a store keys a session by
/// (every request that touches a stored session: <see cref="SessionHandle.FromId"/>).
/// </summary>
[MemoryDiagnoser]
public class SessionIdBenchmarks
{
    private readonly string _valid = SessionId.Create();
    private readonly string _garbage = new('!', SessionId.Length);

    [Benchmark]
    public string Create() => SessionId.Create();

    [Benchmark]
    public bool IsWellFormed_valid() => SessionId.IsWellFormed(_valid);

    [Benchmark]
    public bool IsWellFormed_garbage() => SessionId.IsWellFormed(_garbage);

    [Benchmark]
    public string Handle() => SessionHandle.FromId(_valid);
}
