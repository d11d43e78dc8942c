using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;

namespace StreamSpace.Bench;

/// <summary>The admin's live session events; tells when each session first showed as running.</summary>
public sealed class SessionEvents : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource<long>> running = new();
    private readonly HttpClient client;
    private readonly CancellationTokenSource stop = new();
    private readonly TaskCompletionSource connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task reader;

    private SessionEvents(HttpClient client, Stream stream)
    {
        this.client = client;
        reader = ReadAsync(stream);
    }

    public static async Task<SessionEvents> OpenAsync(BenchContext bench)
    {
        // An own client: the shared one's timeout would end the stream.
        var client = new HttpClient { BaseAddress = bench.Api, Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bench.Token);
        var response = await BenchContext.Within(client.GetAsync("/api/v1/sessions/events", HttpCompletionOption.ResponseHeadersRead), TimeSpan.FromSeconds(30), "the session events stream to open");
        response.EnsureSuccessStatusCode();
        var events = new SessionEvents(client, await response.Content.ReadAsStreamAsync());
        // The stream's first line comes as the subscription is made; launches start after it.
        await BenchContext.Within(events.connected.Task, TimeSpan.FromSeconds(10), "the session events stream's first line");
        return events;
    }

    /// <summary>The Stopwatch timestamp at which the session's "running" event arrived; fails after <paramref name="limit"/>.</summary>
    public Task<long> RunningAsync(string id, TimeSpan limit) => BenchContext.Within(Slot(id).Task, limit, $"session {id} to run");

    private TaskCompletionSource<long> Slot(string id) =>
        running.GetOrAdd(id, _ => new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously));

    private async Task ReadAsync(Stream stream)
    {
        using var lines = new StreamReader(stream);
        try
        {
            while (await lines.ReadLineAsync(stop.Token) is { } line)
            {
                connected.TrySetResult();
                if (!line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    continue;
                }

                var arrived = Stopwatch.GetTimestamp();
                using var session = JsonDocument.Parse(line["data: ".Length..]);
                var id = session.RootElement.GetProperty("id").GetString()!;
                switch (session.RootElement.GetProperty("state").GetString())
                {
                    case "running":
                        Slot(id).TrySetResult(arrived);
                        break;
                    case "failed":
                        Slot(id).TrySetException(new InvalidOperationException($"session {id} failed: {session.RootElement.GetProperty("failure_reason")}"));
                        break;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or HttpRequestException)
        {
            // Disposed, or the API went away: whoever still waits learns it.
            connected.TrySetException(e);
            foreach (var slot in running.Values)
            {
                slot.TrySetException(e);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        client.Dispose();
        await reader.ContinueWith(_ => { }, TaskScheduler.Default);
        stop.Dispose();
    }
}
