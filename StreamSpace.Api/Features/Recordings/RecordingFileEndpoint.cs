using FastEndpoints;
using Microsoft.Net.Http.Headers;
using StreamSpace.Api.Features.Sessions.Files;
using StreamSpace.Api.Infrastructure;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Recordings;

/// <summary>
/// Streams something of a recording from its agent (the file itself, or its export) over a data connection with
/// <see cref="Purpose"/>, as a session's downloads are streamed: nothing of it is held whole here.
/// </summary>
public abstract class RecordingFileEndpoint(RecordingCatalog catalog, AgentFileStreams streams) : EndpointWithoutRequest
{
    protected abstract string Purpose { get; }

    protected abstract string ContentType { get; }

    /// <summary>The download's file name.</summary>
    protected abstract string FileName(RecordingResponse recording);

    public override async Task HandleAsync(CancellationToken cancellationToken)
    {
        if (RecordingRoute.Id(Route<string>("id")) is not { } id || await catalog.GetAsync(id, cancellationToken) is not { } recording)
        {
            await Send.ResultAsync(ApiProblem.NotFound($"No recording {Route<string>("id")}."));
            return;
        }

        var (stream, problem) = await streams.OpenOnAgentAsync(recording.SessionId, recording.AgentId, Purpose, recording.Id.ToString("D"),
            AgentProtocol.MediaVersion, $"The recording's agent is older than protocol {AgentProtocol.MediaVersion} and serves no recordings; upgrade it.",
            cancellationToken);
        if (stream is null)
        {
            await Send.ResultAsync(problem!);
            return;
        }

        await using (stream)
        {
            var response = HttpContext.Response;
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = ContentType;
            response.ContentLength = stream.Reply.Size ?? 0;
            response.Headers.ContentDisposition = new ContentDispositionHeaderValue("attachment") { FileNameStar = FileName(recording) }.ToString();
            if (!await stream.CopyToAsync(response.Body, cancellationToken))
            {
                Logger.LogWarning("Recording {RecordingId} broke off on its agent's side", recording.Id);
                // The headers promised the whole file: ending the connection short tells the browser it failed.
                HttpContext.Abort();
            }
        }
    }

    protected static string BaseName(RecordingResponse recording) =>
        $"{recording.SessionId}-{recording.StartedAt.UtcDateTime:yyyyMMdd-HHmmss}";
}
