using StreamSpace.Agent.Files;
using StreamSpace.Agent.Platforms;
using StreamSpace.Contracts;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Agent.Audio;

/// <summary>
/// The agent's end of an audio stream (<see cref="AudioStreams"/>). A local session's sound is captured here
/// (<see cref="SoundCapture"/>); a Kubernetes session's by its pod's file service, which the agent relays to as it
/// relays files, so the pod exposes no port beyond that service's.
/// </summary>
public sealed class SessionAudioStreams(ISessionPlatform platform, SessionFileStreams files, ILogger<SessionAudioStreams> logger)
{
    private readonly SoundCapture capture = new(logger);

    public async Task RunAsync(StreamOpenMessage open, Stream data, CancellationToken cancellationToken)
    {
        if (await platform.FindFileServiceAsync(open.SessionId, cancellationToken) is { } service)
        {
            await files.RelayToServiceAsync(service, open, data, cancellationToken);
            return;
        }

        SessionSound? sound;
        try
        {
            sound = await platform.FindSoundAsync(open.SessionId, cancellationToken);
        }
        catch (NotSupportedException e)
        {
            await FileStreams.WriteReplyAsync(data, new FileStreamReply(409, e.Message), cancellationToken);
            return;
        }

        await capture.ServeAsync(sound, data, cancellationToken);
    }
}
