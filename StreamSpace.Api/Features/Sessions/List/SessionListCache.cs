using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;

namespace StreamSpace.Api.Features.Sessions.List;

/// <summary>
/// The serialized answers of <c>GET /api/v1/sessions</c>, per viewer and filter. A session list is read far more often
/// than sessions change (every open "my sessions" page polls it), so reading and serializing up to 1,000 rows per
/// request would make PostgreSQL and JSON the bottleneck.
/// <para>
/// Freshness: every session change NOTIFYs <see cref="SessionStateWriter.NotifyChannel"/> when it commits, from any API
/// instance; <see cref="Events.SessionEventHub"/> calls <see cref="Invalidate"/> for each one before it fans the change
/// out, so a client told of a change never lists the old state. This instance's own requests also invalidate right
/// after their commit, so a client sees its own launch or stop at once. Changes that send no NOTIFY (a deleted user's
/// name leaving their past sessions) age out after <see cref="MaxAge"/>.
/// </para>
/// </summary>
public sealed class SessionListCache(IOptions<JsonOptions> json, TimeProvider time)
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(1);

    // Admins may filter by any ?user= and ?state=; past this many distinct lists, new ones are served uncached.
    private const int MaxEntries = 1024;

    private readonly ConcurrentDictionary<Key, Entry> entries = new();
    private long generation;

    public readonly record struct Key(Guid? UserId, string? Username, string? State);

    private sealed record Entry(long Generation, long StoredAt, byte[] Json);

    /// <summary>The list as UTF-8 JSON: from the cache while nothing changed, otherwise read with <paramref name="read"/> and kept.</summary>
    public async Task<byte[]> GetAsync(Key key, Func<Task<IReadOnlyList<SessionResponse>>> read)
    {
        var current = Interlocked.Read(ref generation);
        if (entries.TryGetValue(key, out var entry) && entry.Generation == current && time.GetElapsedTime(entry.StoredAt) < MaxAge)
        {
            return entry.Json;
        }

        // The generation is taken before the read: a change committed during it bumps the generation afterwards, so
        // this entry is never served as current.
        var stored = time.GetTimestamp();
        var bytes = JsonSerializer.SerializeToUtf8Bytes(await read(), json.Value.SerializerOptions);
        if (entries.Count < MaxEntries || entries.ContainsKey(key))
        {
            entries[key] = new Entry(current, stored, bytes);
        }

        return bytes;
    }

    /// <summary>Some session changed: every cached list is stale.</summary>
    public void Invalidate()
    {
        Interlocked.Increment(ref generation);
        entries.Clear();
    }
}
