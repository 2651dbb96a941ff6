using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using ClusterSession.AspNetCore;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Session;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Net.Http.Headers;

namespace ClusterSession.MicroBenchmarks;

/// <summary>
/// The <see cref="ISession"/> path as an app sees it, against ASP.NET Core's own session (the baseline of each
/// category): both built host-free through their public API (<c>AddClusterSession(o =&gt; o.UseInMemory())</c> +
/// <c>UseClusterSession()</c>, <c>AddDistributedMemoryCache()</c> + <c>AddSession()</c> + <c>UseSession()</c>),
/// so no network and no server: what is left is the middleware, the adapter, change tracking and an in-process store.
/// Workload: a session of 10 attributes of 100 bytes, as in the end-to-end harness.
/// </summary>
[MemoryDiagnoser]
[CategoriesColumn]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
public class SessionMiddlewareBenchmarks
{
    private const string Key = "a3";

    private static readonly RequestDelegate Seed = static async context =>
    {
        await context.Session.LoadAsync();
        for (var i = 0; i < 10; i++)
        {
            context.Session.Set("a" + i, new byte[100]);
        }
    };

    private static readonly RequestDelegate ReadOne = static async context =>
    {
        await context.Session.LoadAsync();
        _ = context.Session.GetString(Key);
    };

    private static readonly RequestDelegate WriteOne = static context =>
    {
        context.Session.SetString(Key, "value");
        return Task.CompletedTask;
    };

    private static readonly RequestDelegate NoSession = static _ => Task.CompletedTask;

    private Contender _cluster = null!;
    private Contender _builtIn = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        _cluster = await Contender.CreateAsync(
            static services => services.AddClusterSession(static o => o.UseInMemory()),
            static app => app.UseClusterSession(),
            new ClusterSessionOptions().Cookie.Name!);
        _builtIn = await Contender.CreateAsync(
            static services => services.AddDistributedMemoryCache().AddSession(),
            static app => app.UseSession(),
            SessionDefaults.CookieName);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _cluster.Dispose();
        _builtIn.Dispose();
    }

    /// <summary>(a) <c>GetString</c> on a session already loaded in this request.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("a GetString, loaded")]
    public string? AspNetCore_GetString() => _builtIn.Loaded.GetString(Key);

    /// <inheritdoc cref="AspNetCore_GetString"/>
    [Benchmark, BenchmarkCategory("a GetString, loaded")]
    public string? ClusterSession_GetString() => _cluster.Loaded.GetString(Key);

    /// <summary>(b) <c>SetString</c> of one attribute on a loaded session, then <c>CommitAsync</c> to the store.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("b SetString + commit")]
    public Task AspNetCore_SetString_commit()
    {
        _builtIn.Loaded.SetString(Key, "value");
        return _builtIn.Loaded.CommitAsync();
    }

    /// <inheritdoc cref="AspNetCore_SetString_commit"/>
    [Benchmark, BenchmarkCategory("b SetString + commit")]
    public Task ClusterSession_SetString_commit()
    {
        _cluster.Loaded.SetString(Key, "value");
        return _cluster.Loaded.CommitAsync();
    }

    /// <summary>(c) A whole request through the middleware that loads the session and reads one attribute.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("c request: read one")]
    public Task AspNetCore_read_request() => _builtIn.RunAsync(_builtIn.Read, withCookie: true);

    /// <inheritdoc cref="AspNetCore_read_request"/>
    [Benchmark, BenchmarkCategory("c request: read one")]
    public Task ClusterSession_read_request() => _cluster.RunAsync(_cluster.Read, withCookie: true);

    /// <summary>(c') A whole request that sets one attribute without reading first (ClusterSession: a blind write).</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("c' request: write one")]
    public Task AspNetCore_write_request() => _builtIn.RunAsync(_builtIn.Write, withCookie: true);

    /// <inheritdoc cref="AspNetCore_write_request"/>
    [Benchmark, BenchmarkCategory("c' request: write one")]
    public Task ClusterSession_write_request() => _cluster.RunAsync(_cluster.Write, withCookie: true);

    /// <summary>(d) A whole request with a session cookie whose endpoint never touches the session.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("d request: no session")]
    public Task AspNetCore_nosession_request() => _builtIn.RunAsync(_builtIn.None, withCookie: true);

    /// <inheritdoc cref="AspNetCore_nosession_request"/>
    [Benchmark, BenchmarkCategory("d request: no session")]
    public Task ClusterSession_nosession_request() => _cluster.RunAsync(_cluster.None, withCookie: true);

    /// <summary>One session middleware in a host-free pipeline, with a seeded session and its cookie.</summary>
    private sealed class Contender : IDisposable
    {
        private readonly ServiceProvider _services;
        private string _cookieHeader = string.Empty;

        private Contender(ServiceProvider services, Func<RequestDelegate, RequestDelegate> build)
        {
            _services = services;
            Read = build(ReadOne);
            Write = build(WriteOne);
            None = build(NoSession);
            SeedPipeline = build(Seed);
            CaptureLoaded = build(static async context =>
            {
                await context.Session.LoadAsync();
                context.Items[typeof(ISession)] = context.Session;
            });
        }

        public RequestDelegate Read { get; }

        public RequestDelegate Write { get; }

        public RequestDelegate None { get; }

        /// <summary>The session of a finished read request whose response never started: still loaded and writable.</summary>
        public ISession Loaded { get; private set; } = null!;

        private RequestDelegate SeedPipeline { get; }

        private RequestDelegate CaptureLoaded { get; }

        public static async Task<Contender> CreateAsync(
            Action<IServiceCollection> addServices, Action<IApplicationBuilder> useSession, string cookieName)
        {
            var services = new ServiceCollection().AddLogging();
            addServices(services);
            var provider = services.BuildServiceProvider();
            var contender = new Contender(provider, terminal =>
            {
                var app = new ApplicationBuilder(provider);
                useSession(app);
                app.Run(terminal);
                return app.Build();
            });

            var seed = await contender.RunAsync(contender.SeedPipeline, withCookie: false);
            var setCookie = SetCookieHeaderValue.ParseList(seed.Response.Headers.SetCookie)
                .Single(c => c.Name.Equals(cookieName, StringComparison.Ordinal));
            contender._cookieHeader = new CookieHeaderValue(setCookie.Name, setCookie.Value).ToString();

            // Not started: the built-in session refuses writes once the response has started.
            var capture = await contender.RunAsync(contender.CaptureLoaded, withCookie: true, start: false);
            contender.Loaded = (ISession)capture.Items[typeof(ISession)]!;
            if (contender.Loaded.Get(Key) is not { Length: 100 })
            {
                throw new InvalidOperationException($"The seeded session was not found through the '{cookieName}' cookie.");
            }

            return contender;
        }

        /// <summary>
        /// Runs one request as a server would: the pipeline, then the response's OnStarting callbacks (where the
        /// built-in session writes its cookie) when the app did not start the response itself.
        /// </summary>
        public async Task<HttpContext> RunAsync(RequestDelegate pipeline, bool withCookie, bool start = true)
        {
            var response = new ServerResponseFeature();
            var features = new FeatureCollection();
            features.Set<IHttpRequestFeature>(new HttpRequestFeature());
            features.Set<IHttpResponseFeature>(response);
            features.Set<IHttpResponseBodyFeature>(new StreamResponseBodyFeature(Stream.Null));
            var context = new DefaultHttpContext(features);
            if (withCookie)
            {
                context.Request.Headers.Cookie = _cookieHeader;
            }

            await pipeline(context);
            if (start)
            {
                await response.StartAsync();
            }

            return context;
        }

        public void Dispose() => _services.Dispose();
    }

    /// <summary>A response feature that runs OnStarting callbacks (last registered first), as Kestrel does.</summary>
    private sealed class ServerResponseFeature : HttpResponseFeature
    {
        private Stack<(Func<object, Task> Callback, object State)>? _onStarting;
        private bool _started;

        public override bool HasStarted => _started;

        public override void OnStarting(Func<object, Task> callback, object state)
            => (_onStarting ??= new Stack<(Func<object, Task>, object)>()).Push((callback, state));

        public override void OnCompleted(Func<object, Task> callback, object state)
        {
        }

        public async Task StartAsync()
        {
            if (_onStarting is { } callbacks)
            {
                while (callbacks.TryPop(out var entry))
                {
                    await entry.Callback(entry.State);
                }
            }

            _started = true;
        }
    }
}
