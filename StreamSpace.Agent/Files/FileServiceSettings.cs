using System.Net;
using StreamSpace.Settings;

namespace StreamSpace.Agent.Files;

/// <summary>
/// What the file service (<c>files-serve</c>, in a Kubernetes session pod) reads from its environment. The session's
/// Deployment sets them (SessionObjects); the key itself is never in the environment, only the path of its file.
/// </summary>
public sealed class FileServiceSettings : IValidatedSettings
{
    /// <summary>5901 is display :1's VNC port, which session images often use; this one is StreamSpace's alone.</summary>
    public const int DefaultPort = Contracts.Tunnel.FileStreams.ServicePort;

    [Setting("STREAMSPACE_FILES_KEY_FILE", Required = true, Help = "the file of the session's files key, mounted from the session's Secret")]
    public string KeyFile { get; set; } = "";

    [Setting("STREAMSPACE_FILES_PORT", Help = "the port the agent reaches the file service on, 1 to 65535")]
    public int Port { get; set; } = DefaultPort;

    [Setting("STREAMSPACE_FILES_ADDRESS", Help = "the IP address to listen on; empty: every address of the pod")]
    public string Address { get; set; } = "";

    [Setting("STREAMSPACE_FILES_HOME", Help = "the session's home, whose Uploads and Downloads the service serves; empty: $HOME")]
    public string Home { get; set; } = "";

    [Setting("STREAMSPACE_SOUND_SOCKET", Help = "the socket of the session's PulseAudio, whose sound the service captures for the agent; empty: the session has no sound")]
    public string SoundSocket { get; set; } = "";

    [Setting("STREAMSPACE_SESSION_ID")]
    public string SessionId { get; set; } = "";

    public void Validate()
    {
        if (Port is < 1 or > 65535)
        {
            throw new InvalidSettingException("STREAMSPACE_FILES_PORT", "must be from 1 to 65535.");
        }

        if (Address.Length > 0 && !IPAddress.TryParse(Address, out _))
        {
            throw new InvalidSettingException("STREAMSPACE_FILES_ADDRESS", $"has an invalid value '{Address}': expected an IP address.");
        }

        if (HomePath.Length == 0 || !Path.IsPathRooted(HomePath))
        {
            throw new InvalidSettingException("STREAMSPACE_FILES_HOME", "is not set and neither is HOME: expected the session's home folder.");
        }
    }

    public string HomePath => Home.Length > 0 ? Home : Environment.GetEnvironmentVariable("HOME") ?? "";

    /// <summary>The key, read once at start: a missing, unreadable or short key file stops the service with one line naming the setting.</summary>
    public byte[] ReadKey()
    {
        byte[] key;
        try
        {
            key = File.ReadAllBytes(KeyFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidSettingException("STREAMSPACE_FILES_KEY_FILE", $"names a file that cannot be read ({e.Message}).");
        }

        return key.Length == Contracts.Tunnel.FileStreams.FilesKeyBytes
            ? key
            : throw new InvalidSettingException("STREAMSPACE_FILES_KEY_FILE", $"must hold a key of {Contracts.Tunnel.FileStreams.FilesKeyBytes} bytes; it holds {key.Length}.");
    }
}
