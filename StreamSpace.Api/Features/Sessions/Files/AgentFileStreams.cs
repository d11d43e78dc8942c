using System.Security.Claims;
using Npgsql;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Features.Replicas;
using StreamSpace.Api.Features.Sessions.Vnc;
using StreamSpace.Api.Infrastructure;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Api.Features.Sessions.Files;

/// <summary>An open file stream on the session's agent and the agent's first reply; disposing hands the data connection back to close.</summary>
public sealed class OpenFileStream(DataLink link, FileStreamReply reply) : IAsyncDisposable
{
    public Stream Stream => link.Stream;

    public FileStreamReply Reply { get; } = reply;

    /// <summary>
    /// Copies the <see cref="FileStreamReply.Size"/> bytes the agent announced to <paramref name="body"/>; false when the
    /// agent's side ended first (the caller aborts the response, so the browser reports a failed download, not a short file).
    /// </summary>
    public async Task<bool> CopyToAsync(Stream body, CancellationToken cancellationToken)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            var remaining = Reply.Size ?? 0;
            while (remaining > 0)
            {
                var read = await Stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(remaining, ChunkBytes)), cancellationToken);
                if (read == 0)
                {
                    return false;
                }

                await body.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                remaining -= read;
            }

            return true;
        }
        catch (IOException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private const int ChunkBytes = 64 * 1024;

    public ValueTask DisposeAsync()
    {
        link.Finish();
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// File transfer between the browser and a session's home (issue 17), carried like a viewer's VNC bytes: the agent is
/// asked over its control socket to dial a data connection to this replica (<see cref="PendingStreams"/>), opened
/// with a file purpose (<see cref="FileStreams"/>). The bytes then flow over the agent's own outbound TCP connection,
/// so TCP flow control bounds what either side holds, and it works on any replica as viewers do.
/// </summary>
public sealed class AgentFileStreams(SessionStore sessions, ISessionAgents agents, PendingStreams streams, ReplicaIdentity replica, NpgsqlDataSource dataSource,
    ILogger<AgentFileStreams> logger)
{
    private static readonly TimeSpan OpenTimeout = DataConnection.TokenLifetime;

    /// <summary>
    /// Checks the user may use the session's files (owner or admin; 404 for anyone else, as for the session itself), that
    /// it runs (409), then opens the stream; the problem to answer instead when anything fails, including the agent's refusal.
    /// </summary>
    public async Task<(OpenFileStream? Stream, IResult? Problem)> OpenAsync(string sessionId, ClaimsPrincipal user, string purpose, string? fileName,
        CancellationToken cancellationToken)
    {
        var session = await sessions.GetAsync(sessionId, user.RequiredUserId(), user.IsAdmin(), cancellationToken);
        if (session is null)
        {
            return (null, ApiProblem.NotFound($"No session {sessionId}."));
        }

        if (session.State != SessionState.Running)
        {
            return (null, ApiProblem.Conflict($"The session is {session.State.ToName()}; files go in and out while it is running."));
        }

        if (session.AgentId is not { } agentId)
        {
            return (null, ApiProblem.Unavailable("The session's agent is not online.", "Try again once it has reconnected."));
        }

        return await OpenOnAgentAsync(sessionId, agentId, purpose, fileName, AgentProtocol.DataVersion,
            "The session's agent speaks protocol version 1, which carries no files; upgrade the agent.", cancellationToken);
    }

    /// <summary>
    /// Asks the agent for a data connection with <paramref name="purpose"/> about <paramref name="sessionId"/> (which
    /// may have ended: recordings outlive their sessions) and reads its first reply; the problem to answer instead when
    /// the agent is offline (503), older than <paramref name="minimumProtocol"/> (409 with <paramref name="tooOld"/>),
    /// does not answer, or refuses.
    /// </summary>
    public async Task<(OpenFileStream? Stream, IResult? Problem)> OpenOnAgentAsync(string sessionId, string agentId, string purpose, string? fileName,
        int minimumProtocol, string tooOld, CancellationToken cancellationToken)
    {
        if (await agents.LinkAsync(agentId, cancellationToken) is not { } link)
        {
            return (null, ApiProblem.Unavailable("The session's agent is not online.", "Try again once it has reconnected."));
        }

        if (link.ProtocolVersion < minimumProtocol)
        {
            return (null, ApiProblem.Conflict(tooOld));
        }

        var data = await ConnectAsync(sessionId, agentId, purpose, fileName, cancellationToken);
        if (data.Problem is not null)
        {
            return (null, data.Problem);
        }

        FileStreamReply reply;
        try
        {
            reply = await FileStreams.ReadReplyAsync(data.Link!.Stream, cancellationToken);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or EndOfStreamException)
        {
            data.Link!.Finish();
            logger.LogWarning("The agent of session {SessionId} gave no file stream reply: {Reason}", sessionId, e.Message);
            return (null, Problem(StatusCodes.Status502BadGateway, "The session's agent does not carry files.",
                "Its answer was not a file stream (is the agent older than this API?); upgrade the agent."));
        }

        if (reply.Status != StatusCodes.Status200OK)
        {
            data.Link.Finish();
            return (null, Problem(reply.Status is >= 400 and < 600 ? reply.Status : StatusCodes.Status502BadGateway, "The file operation was refused.", reply.Error));
        }

        return (new OpenFileStream(data.Link, reply), null);
    }

    public static IResult Problem(int status, string title, string? detail) => TypedResults.Problem(title: title, detail: detail, statusCode: status);

    /// <summary>Audits a finished transfer: <c>file.uploaded</c> or <c>file.downloaded</c> with the name, size and user.</summary>
    public async Task AuditAsync(ClaimsPrincipal user, string action, string sessionId, string name, long size, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.WriteAsync(Actor.From(user), action, "session", sessionId, new { name, size, user = user.Identity?.Name }, cancellationToken: cancellationToken);
    }

    private async Task<(DataLink? Link, IResult? Problem)> ConnectAsync(string sessionId, string agentId, string purpose, string? fileName, CancellationToken aborted)
    {
        var pending = streams.Expect(sessionId, agentId);
        DataLink? data = null;
        try
        {
            var open = new StreamOpenMessage(pending.StreamId, sessionId, pending.Token, replica.DataUrl ?? "", pending.ExpiresAt, purpose, fileName);
            if (open.DataUrl.Length == 0 || !await agents.OpenStreamAsync(agentId, open, aborted))
            {
                return (null, ApiProblem.Unavailable("The session's agent is not online.", "Try again once it has reconnected."));
            }

            using var wait = CancellationTokenSource.CreateLinkedTokenSource(aborted);
            wait.CancelAfter(OpenTimeout);
            data = await pending.Arrival.WaitAsync(wait.Token);
            return (data, null);
        }
        catch (DataConnectionFailedException e)
        {
            return (null, Problem(StatusCodes.Status502BadGateway, "The session's agent could not carry the file.", e.Message));
        }
        catch (Exception e) when (e is System.Threading.Channels.ChannelClosedException or NpgsqlException or TimeoutException or InvalidOperationException && !aborted.IsCancellationRequested)
        {
            logger.LogWarning("Could not ask agent {AgentId} for a file stream: {Reason}", agentId, e.Message);
            return (null, ApiProblem.Unavailable("The session's agent is not online.", "Try again once it has reconnected."));
        }
        catch (OperationCanceledException) when (!aborted.IsCancellationRequested)
        {
            return (null, Problem(StatusCodes.Status504GatewayTimeout, "The session's agent did not answer.",
                $"Its data connection did not arrive within {OpenTimeout.TotalSeconds:0}s."));
        }
        finally
        {
            streams.Forget(pending);
            if (data is null)
            {
                // A connection that arrives after this request gave up is closed, not left waiting.
                pending.Fail("the request is gone");
                _ = pending.Arrival.ContinueWith(t => t.Result.Finish(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            }
        }
    }
}
