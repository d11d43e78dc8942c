using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using StreamSpace.Api.Features.Replicas;
using StreamSpace.Api.Features.Sessions.Vnc;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Sessions;

public sealed class DataListenerTests
{
    [Fact]
    public async Task Connections_beyond_64_that_have_not_sent_their_head_are_closed_unanswered_until_some_go()
    {
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        var url = new Uri(api.Services.GetRequiredService<ReplicaIdentity>().DataUrl!);
        var idle = new List<TcpClient>();
        try
        {
            for (var i = 0; i < DataListener.MaxUnansweredConnections; i++)
            {
                var client = new TcpClient();
                await client.ConnectAsync(url.Host, url.Port);
                idle.Add(client);
            }

            // Accepted after the 64 (the listener takes connections in order), it is closed without a word.
            Assert.Null(await StatusLineAsync(url));
        }
        finally
        {
            foreach (var client in idle)
            {
                client.Dispose();
            }
        }

        // Once those have gone, a request is answered again (401: its token is unknown).
        string? status = null;
        await Eventually.TrueAsync(async () => (status = await StatusLineAsync(url)) is not null, TimeSpan.FromSeconds(10), "the listener to answer again");
        Assert.StartsWith("HTTP/1.1 401", status);
    }

    [Fact]
    public async Task A_viewer_whose_agent_connection_breaks_while_answered_101_fails_at_once_not_after_the_token_lifetime()
    {
        await using var api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync()).Start();
        var streams = api.Services.GetRequiredService<PendingStreams>();
        var pending = streams.Expect("sess-broken", "broken-agent");
        var (admission, admitted) = streams.Admit($"Bearer {pending.Token}", "broken-agent", "sess-broken", error: null);
        Assert.Equal(DataAdmission.Upgrade, admission);

        // Both entry points answer through this; the agent's socket reset before the 101 was written.
        Func<Task<Stream>> resetByAgent = () => throw new IOException("Connection reset by peer");
        await Assert.ThrowsAsync<IOException>(() => PendingStreams.UpgradeAsync(admitted!, resetByAgent));
        var failure = await Assert.ThrowsAsync<DataConnectionFailedException>(() => pending.Arrival.WaitAsync(TimeSpan.FromSeconds(1)));
        Assert.Contains("broke", failure.Message);
    }

    /// <summary>Sends a data request with an unknown token; the answer's status line, or null when the listener closed the connection without one.</summary>
    private static async Task<string?> StatusLineAsync(Uri url)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(url.Host, url.Port);
        var stream = client.GetStream();
        try
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                $"GET {DataConnection.Path} HTTP/1.1\r\nHost: {url.Authority}\r\nConnection: Upgrade\r\nUpgrade: {DataConnection.UpgradeProtocol}\r\n" +
                $"Authorization: Bearer {DataConnection.TokenPrefix}unknown\r\n{AgentProtocol.AgentIdHeader}: some-agent\r\n{DataConnection.SessionIdHeader}: sess-any\r\n\r\n"));
            using var reader = new StreamReader(stream, Encoding.ASCII);
            return await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (IOException)
        {
            // Reset: closed before it read the request.
            return null;
        }
    }
}
