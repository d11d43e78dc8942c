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
        SessionFileService? service;
        try
        {
            service = await platform.FindFileServiceAsync(open.SessionId, cancellationToken);
        }
        catch (FileRefusedException e) when (e.Status == 409)
        {
            // A pod without a file service (an image without it, or a session from before it) runs, but has no way to
            // send its sound: not a session that is not running, which a viewer would take for one that ended.
            await FileStreams.WriteReplyAsync(data, new FileStreamReply(503,
                "The session's pod has no file service, which carries its sound: its image must run it (see images/session), and a session started before sound worked must be started again."), cancellationToken);
            return;
        }
        catch (FileRefusedException e)
        {
            await FileStreams.WriteReplyAsync(data, new FileStreamReply(e.Status, e.Message), cancellationToken);
            return;
        }

        if (service is not null)
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
            // The platform cannot capture sound at all: a missing feature, not a session that is not running.
            await FileStreams.WriteReplyAsync(data, new FileStreamReply(503, e.Message), cancellationToken);
            return;
        }

        await capture.ServeAsync(sound, data, cancellationToken);
    }
}
