using System.Buffers.Binary;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Agent.Recording;

/// <summary>
/// The bytes of a recording file as the one stream the server sent, with the time of the record being read. Ends at
/// the end record, or where a recording cut short stops (a partial record at its tail is dropped).
/// </summary>
public sealed class RecordingReader : Stream
{
    private readonly Stream file;
    private int remaining;
    private bool ended;

    private RecordingReader(Stream file) => this.file = file;

    /// <summary>The time of the record being read, ms since the recording began.</summary>
    public long TimeMs { get; private set; }

    /// <summary>The recording's end: its end record's time, or the last record's once the reader has reached the end.</summary>
    public long EndMs { get; private set; }

    /// <summary>The ServerInit message, the first record.</summary>
    public byte[] ServerInit { get; private set; } = [];

    /// <summary>Checks the magic and reads the first record; throws <see cref="InvalidDataException"/> for anything that is not a recording.</summary>
    public static RecordingReader Open(Stream file)
    {
        var magic = new byte[RecordingFormat.Magic.Length];
        if (file.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false) != magic.Length || !RecordingFormat.Magic.SequenceEqual(magic))
        {
            throw new InvalidDataException("the file is not a StreamSpace recording (no magic)");
        }

        var reader = new RecordingReader(file);
        if (!reader.NextRecord() || reader.remaining < 24)
        {
            throw new InvalidDataException("the recording has no ServerInit record");
        }

        reader.ServerInit = new byte[reader.remaining];
        reader.ReadExactly(reader.ServerInit);
        return reader;
    }

    private bool NextRecord()
    {
        Span<byte> header = stackalloc byte[RecordingFormat.RecordHeaderBytes];
        while (!ended)
        {
            if (file.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) != header.Length)
            {
                ended = true;
                break;
            }

            TimeMs = BinaryPrimitives.ReadUInt32BigEndian(header);
            EndMs = TimeMs;
            remaining = BinaryPrimitives.ReadInt32BigEndian(header[4..]);
            if (remaining < 0)
            {
                throw new InvalidDataException("a record of the recording has a negative length");
            }

            if (remaining == 0)
            {
                ended = true;
                break;
            }

            return true;
        }

        return false;
    }

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }

        if (remaining == 0 && !NextRecord())
        {
            return 0;
        }

        var read = file.Read(buffer[..Math.Min(buffer.Length, remaining)]);
        if (read == 0)
        {
            // A record cut short by a crash: the recording ends before it.
            ended = true;
            remaining = 0;
            return 0;
        }

        remaining -= read;
        return read;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            file.Dispose();
        }

        base.Dispose(disposing);
    }
}
