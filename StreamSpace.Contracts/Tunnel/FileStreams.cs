using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace StreamSpace.Contracts.Tunnel;

/// <summary>One file of the session's ~/Downloads.</summary>
public sealed record SessionFile(string Name, long Size, DateTimeOffset Modified);

/// <summary>
/// The agent's answer on a file stream, sent first. <see cref="Status"/> is an HTTP status the API passes on (200 when
/// the operation goes ahead); <see cref="Error"/> says why not, for the user.
/// </summary>
public sealed record FileStreamReply(int Status, string? Error = null, string? Name = null, long? Size = null, IReadOnlyList<SessionFile>? Files = null);

/// <summary>
/// What a connection to a session pod's file service asks for, sent as its second frame (after the key): the purpose
/// and file name that a data connection carries in its <see cref="DataConnection"/> open message.
/// </summary>
public sealed record FileStreamRequest(string Purpose, string? Name);

/// <summary>
/// File operations over a data connection (the connection of <see cref="DataConnection"/>, opened with a purpose).
/// Frames are a 4-byte big-endian length and that many bytes. The agent sends a <see cref="FileStreamReply"/> frame
/// first. For an upload the API then sends the file as frames of bytes, an empty frame ends it, and the agent answers
/// a second reply with the name it was stored under. For a download the file's <see cref="FileStreamReply.Size"/> raw
/// bytes follow the reply. Frames keep the end of an upload explicit, so a cut connection is never a complete file.
/// On Kubernetes the agent relays the same stream to the session pod's file service (the agent's <c>files-serve</c>
/// mode, run in the pod as the session's user), after two frames of its own: the session's files key, which the
/// service checks before anything else, and a <see cref="FileStreamRequest"/>.
/// </summary>
public static class FileStreams
{
    public const string Upload = "file_upload";
    public const string Download = "file_download";
    public const string ListDownloads = "file_list";

    public static readonly IReadOnlySet<string> Purposes = new HashSet<string> { Upload, Download, ListDownloads };

    /// <summary>The port of a Kubernetes session pod's file service (beside Xvnc's 5900; not 5901, display :1's VNC port).</summary>
    public const int ServicePort = 5990;

    public const string UploadsFolder = "Uploads";
    public const string DownloadsFolder = "Downloads";

    /// <summary>The largest frame either side accepts: a reply with a long list, or a chunk of an upload.</summary>
    public const int MaxFrameBytes = 1024 * 1024;

    public const int MaxNameBytes = 255;

    /// <summary>The length of a session's files key, the random bytes that prove a connection to its pod's file service is the agent's.</summary>
    public const int FilesKeyBytes = 32;

    /// <summary>Why a file name is refused, or null when it names one file inside the folder.</summary>
    public static string? NameProblem(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return "The file name is empty.";
        }

        if (name is "." or "..")
        {
            return $"\"{name}\" is not a file name.";
        }

        if (name.Contains('/') || name.Contains('\\'))
        {
            return "A file name cannot contain / or \\: files go straight into the folder.";
        }

        if (name.Any(char.IsControl))
        {
            return "A file name cannot contain control characters.";
        }

        if (Encoding.UTF8.GetByteCount(name) > MaxNameBytes)
        {
            return $"The file name is longer than {MaxNameBytes} bytes.";
        }

        return null;
    }

    public static async Task WriteFrameAsync(Stream stream, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        var length = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, payload.Length);
        await stream.WriteAsync(length, cancellationToken);
        if (payload.Length > 0)
        {
            await stream.WriteAsync(payload, cancellationToken);
        }

        await stream.FlushAsync(cancellationToken);
    }

    public static Task WriteReplyAsync(Stream stream, FileStreamReply reply, CancellationToken cancellationToken) =>
        WriteFrameAsync(stream, JsonSerializer.SerializeToUtf8Bytes(reply, AgentProtocol.Json), cancellationToken);

    /// <summary>Reads one frame's length; throws <see cref="InvalidDataException"/> for a length past <see cref="MaxFrameBytes"/>.</summary>
    public static async Task<int> ReadFrameLengthAsync(Stream stream, CancellationToken cancellationToken)
    {
        var length = new byte[4];
        await stream.ReadExactlyAsync(length, cancellationToken);
        var value = BinaryPrimitives.ReadInt32BigEndian(length);
        return value is < 0 or > MaxFrameBytes
            ? throw new InvalidDataException("the other side does not speak StreamSpace file streams (a frame's length is out of range)")
            : value;
    }

    public static async Task<FileStreamReply> ReadReplyAsync(Stream stream, CancellationToken cancellationToken)
    {
        var length = await ReadFrameLengthAsync(stream, cancellationToken);
        var payload = new byte[length];
        await stream.ReadExactlyAsync(payload, cancellationToken);
        try
        {
            return JsonSerializer.Deserialize<FileStreamReply>(payload, AgentProtocol.Json) ?? throw new InvalidDataException("the file stream's reply is null");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException("the file stream's reply is not JSON: " + e.Message);
        }
    }
}
