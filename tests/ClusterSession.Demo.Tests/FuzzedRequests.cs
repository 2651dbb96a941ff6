using System.Globalization;
using System.Text;

namespace ClusterSession.Demo.Tests;

/// <summary>One fuzzed request: the raw bytes sent on the wire and a short label of what was fuzzed.</summary>
public sealed record FuzzedRequest(string Label, byte[] Bytes);

/// <summary>
/// Bad input for the demo, generated from a seeded <see cref="Random"/> so that a failing run can be
/// replayed: malformed, oversized, duplicated, quoted and non-ASCII session and authentication cookies
/// and <c>X-Session-Id</c> headers (alone or beside real cookies of live and logged-out sessions), odd
/// attribute names and sizes, malformed JSON and odd content types, on every endpoint of the contract.
/// Requests are raw bytes because <see cref="HttpClient"/> refuses to send most of them. The request
/// framing itself (request line, Content-Length) stays valid, so every request gets an answer.
/// </summary>
public sealed class FuzzedRequests
{
    private static readonly string[] NonAscii = ["é", "ü", "€", "日本", "😀", "\u00a0", "ÿ", "Ω", "\u200b", "ﬀ"];
    private static readonly string[] Methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"];
    private static readonly string[] ContentTypes =
    [
        "application/json", "application/json; charset=utf-8", "text/plain", "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded", "application/json; charset=latin1", "multipart/form-data; boundary=x",
        "application/jsonx", "*/*", ";;;",
    ];

    private readonly Random _random;
    private readonly IReadOnlyList<string> _realCookies;

    /// <param name="seed">The seed; the same seed and cookies give the same requests.</param>
    /// <param name="realCookies">Real <c>name=value</c> cookies (live and logged-out sessions, their authentication cookies) to mix in and mutate.</param>
    public FuzzedRequests(int seed, IReadOnlyList<string> realCookies)
    {
        _random = new Random(seed);
        _realCookies = realCookies;
    }

    public FuzzedRequest Next()
    {
        var label = new List<string>();
        var (method, path, body, contentType) = Endpoint(label);
        var headers = new List<(string Name, byte[] Value)>();
        if (_random.Next(4) != 0)
        {
            headers.Add(("Cookie", CookieHeader(label)));
        }

        if (_random.Next(4) == 0)
        {
            label.Add("x-session-id");
            var count = _random.Next(6) == 0 ? 2 : 1;
            for (var i = 0; i < count; i++)
            {
                headers.Add(("X-Session-Id", Value(label, forSessionId: true)));
            }
        }

        if (_random.Next(8) == 0)
        {
            label.Add("odd-header");
            headers.Add(("X-Fuzz-" + _random.Next(1000).ToString(CultureInfo.InvariantCulture), Value(label, forSessionId: false)));
        }

        if (_random.Next(6) == 0)
        {
            label.Add("user-agent");
            headers.Add(("User-Agent", Value(label, forSessionId: false)));
        }

        return new FuzzedRequest(string.Join(' ', label), Build(method, path, headers, body, contentType));
    }

    private (string Method, string Path, byte[]? Body, string? ContentType) Endpoint(List<string> label)
    {
        switch (_random.Next(10))
        {
            case 0:
            case 1:
                label.Add("PUT attribute");
                return ("PUT", "/api/attributes/" + AttributeName(label), AttributeBody(label), Pick(ContentTypes));
            case 2:
            case 3:
                label.Add("POST cart");
                return ("POST", "/api/cart/items", Json(label, "item"), JsonContentType());
            case 4:
            case 5:
                label.Add("POST login");
                return ("POST", "/api/login", Json(label, "user"), JsonContentType());
            case 6:
                label.Add("DELETE session");
                return ("DELETE", "/api/sessions/" + AttributeName(label), null, null);
            case 7:
                label.Add("POST logout");
                return ("POST", "/api/logout", _random.Next(3) == 0 ? Json(label, "user") : null, null);
            case 8:
                label.Add("GET");
                return ("GET", Pick(["/", "/api/me", "/api/attributes", "/api/cart", "/api/sessions", "/healthz"]), null, null);
            default:
                var method = Pick(Methods);
                label.Add(method + " any");
                var path = Pick(["/", "/api/me", "/api/attributes", "/api/attributes/" + AttributeName(label), "/api/cart", "/api/cart/items", "/api/login", "/api/logout", "/api/sessions", "/nowhere"]);
                return (method, path, method is "GET" or "HEAD" || _random.Next(2) == 0 ? null : Json(label, "item"), JsonContentType());
        }
    }

    /// <summary>An attribute name (or revocation handle) as a path segment: percent-encoded junk, non-ASCII, very long.</summary>
    private string AttributeName(List<string> label)
    {
        switch (_random.Next(8))
        {
            case 0:
                label.Add("name:long");
                return new string('n', _random.Next(200, 4000));
            case 1:
                label.Add("name:non-ascii");
                return Uri.EscapeDataString(Pick(NonAscii) + Pick(NonAscii));
            case 2:
                label.Add("name:percent-junk");
                return Pick(["%00", "%ff%fe", "%2e%2e%2f", "%2F", "%", "%zz", "..", "%C0%AF", "__cs.ticket", "%5F%5Fcs.ticket"]);
            case 3:
                label.Add("name:empty-ish");
                return Pick(["%20", "+", "~", "'", "%22"]);
            default:
                return "a" + _random.Next(20).ToString(CultureInfo.InvariantCulture);
        }
    }

    private byte[] AttributeBody(List<string> label)
    {
        switch (_random.Next(6))
        {
            case 0:
                label.Add("body:large");
                return RandomAscii(_random.Next(15 * 1024, 20 * 1024));
            case 1:
                label.Add("body:invalid-utf8");
                var bytes = new byte[_random.Next(1, 64)];
                _random.NextBytes(bytes);
                return bytes;
            case 2:
                label.Add("body:empty");
                return [];
            default:
                return Encoding.UTF8.GetBytes("v" + Pick(NonAscii));
        }
    }

    private byte[] Json(List<string> label, string field)
    {
        string json;
        switch (_random.Next(12))
        {
            case 0:
                json = "{not json";
                break;
            case 1:
                json = "";
                break;
            case 2:
                json = $"{{\"{field}\":{_random.Next()}}}";
                break;
            case 3:
                json = $"{{\"{field}\":\"{new string('x', _random.Next(200, 20000))}\"}}";
                break;
            case 4:
                json = new string('[', 2000) + new string(']', 2000);
                break;
            case 5:
                json = "null";
                break;
            case 6:
                json = $"{{\"{field}\":\"\\ud800\"}}";
                break;
            case 7:
                json = $"{{\"user\":\"alice\",\"password\":\"demo\",\"user\":\"{Pick(NonAscii)}\"}}";
                break;
            case 8:
                json = "{\"user\":\"alice\",\"password\":\"demo\"}";
                break;
            case 9:
                return [0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d];
            default:
                json = $"{{\"{field}\":\"{Pick(NonAscii)}\",\"password\":\"{Pick(NonAscii)}\"}}";
                break;
        }

        label.Add("json:" + json.Length.ToString(CultureInfo.InvariantCulture));
        return Encoding.UTF8.GetBytes(json);
    }

    private string? JsonContentType() => _random.Next(5) == 0 ? Pick(ContentTypes) : "application/json";

    /// <summary>A Cookie header: session and authentication cookies, fuzzed, duplicated, beside real ones, or plain junk.</summary>
    private byte[] CookieHeader(List<string> label)
    {
        var parts = new List<byte[]>();
        var count = _random.Next(1, 5);
        for (var i = 0; i < count; i++)
        {
            switch (_random.Next(6))
            {
                case 0:
                    label.Add("cookie:real");
                    parts.Add(Encoding.ASCII.GetBytes(Pick(_realCookies)));
                    break;
                case 1:
                    label.Add("cookie:junk-name");
                    parts.Add([.. Value(label, forSessionId: false), .. "="u8, .. Value(label, forSessionId: false)]);
                    break;
                default:
                    var name = Pick([DemoClient.CookieName, DemoClient.AuthCookieName, DemoClient.AuthCookieName + "C1"]);
                    parts.Add([.. Encoding.ASCII.GetBytes(name + "="), .. Value(label, forSessionId: true)]);
                    break;
            }
        }

        var separator = Pick<byte[]>(["; "u8.ToArray(), ";"u8.ToArray(), ", "u8.ToArray(), ";;"u8.ToArray()]);
        var header = new List<byte>();
        foreach (var part in parts)
        {
            if (header.Count > 0)
            {
                header.AddRange(separator);
            }

            header.AddRange(part);
        }

        return [.. header];
    }

    /// <summary>A header or cookie value: well-formed-looking, mutated real, non-ASCII, invalid UTF-8, control bytes, oversized, quoted.</summary>
    private byte[] Value(List<string> label, bool forSessionId)
    {
        switch (_random.Next(forSessionId ? 13 : 10))
        {
            case 0:
                label.Add("v:empty");
                return [];
            case 1:
                label.Add("v:non-ascii");
                return Encoding.UTF8.GetBytes(RandomId(8) + Pick(NonAscii) + RandomId(8));
            case 2:
                label.Add("v:latin1-bytes");
                return [.. Encoding.ASCII.GetBytes(RandomId(4)), (byte)_random.Next(0x80, 0x100), (byte)_random.Next(0x80, 0x100)];
            case 3:
                label.Add("v:control");
                return [.. Encoding.ASCII.GetBytes(RandomId(4)), (byte)Pick([0x00, 0x01, 0x07, 0x1b, 0x7f, 0x09])];
            case 4:
                label.Add("v:oversized");
                return Encoding.ASCII.GetBytes(RandomId(_random.Next(1000, 12000)));
            case 5:
                label.Add("v:quoted");
                return Encoding.ASCII.GetBytes("\"" + RandomId(32) + "\"");
            case 6:
                label.Add("v:separators");
                return Encoding.ASCII.GetBytes(Pick(["a,b", "=", "==", "a=b=c", "\\", "%00", "%ff", " ", "()<>@", "{}", "chunks-", "chunks-0"]));
            case 7:
                label.Add("v:chunks");
                return Encoding.ASCII.GetBytes("chunks-" + Pick(["2", "3", "99", "100000", "2147483647", "-1", "99999999999"]));
            case 8:
                label.Add("v:well-formed-id");
                return Encoding.ASCII.GetBytes(RandomId(32));
            case 9:
                label.Add("v:base64-ish");
                return Encoding.ASCII.GetBytes("CfDJ8" + RandomId(_random.Next(10, 300)));
            default:
                label.Add("v:mutated-real");
                var real = Pick(_realCookies);
                var value = real[(real.IndexOf('=', StringComparison.Ordinal) + 1)..].ToCharArray();
                if (value.Length > 0)
                {
                    value[_random.Next(value.Length)] = RandomId(1)[0];
                }

                return Encoding.ASCII.GetBytes(new string(value));
        }
    }

    private string RandomId(int length)
    {
        const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        return string.Create(length, _random, static (span, random) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = Alphabet[random.Next(Alphabet.Length)];
            }
        });
    }

    private byte[] RandomAscii(int length) => Encoding.ASCII.GetBytes(RandomId(length));

    private T Pick<T>(IReadOnlyList<T> items) => items[_random.Next(items.Count)];

    private static byte[] Build(string method, string path, List<(string Name, byte[] Value)> headers, byte[]? body, string? contentType)
    {
        using var request = new MemoryStream();
        void Line(string text) => request.Write(Encoding.ASCII.GetBytes(text + "\r\n"));
        Line($"{method} {path} HTTP/1.1");
        Line("Host: 127.0.0.1");
        foreach (var (name, value) in headers)
        {
            request.Write(Encoding.ASCII.GetBytes(name + ": "));
            request.Write(value);
            request.Write("\r\n"u8);
        }

        if (body is not null)
        {
            if (contentType is not null)
            {
                Line("Content-Type: " + contentType);
            }

            Line("Content-Length: " + body.Length.ToString(CultureInfo.InvariantCulture));
        }
        else if (method is "POST" or "PUT" or "PATCH")
        {
            Line("Content-Length: 0");
        }

        Line("Connection: close");
        Line("");
        if (body is not null)
        {
            request.Write(body);
        }

        return request.ToArray();
    }
}
