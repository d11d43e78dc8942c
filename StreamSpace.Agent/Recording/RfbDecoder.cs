using System.Buffers.Binary;
using System.IO.Compression;

namespace StreamSpace.Agent.Recording;

/// <summary>
/// Replays a recording's server messages onto a framebuffer of the desktop's size, in the bytes ffmpeg calls
/// <c>rgb0</c> (the recording's pixel format as it lies in memory). Knows what the recorder asked for: ZRLE, CopyRect,
/// Raw and DesktopSize; skips bells, clipboard text and EndOfContinuousUpdates. A new desktop size starts a new, black
/// framebuffer, which the server's next update fills.
/// </summary>
public sealed class RfbDecoder : IDisposable
{
    private const int BytesPerPixel = 4;
    private const int TileSize = 64;

    /// <summary>The largest desktop a recording may have (Xvnc's own limit is 16384 a side, far beyond any real screen);
    /// a larger one is a corrupt file, refused before a frame of it is allocated.</summary>
    public const long MaxPixels = 8192L * 8192;

    /// <summary>Room for zlib's own framing beyond a rectangle's pixels.</summary>
    private const long ZlibSlackBytes = 1024 * 1024;

    private readonly RecordingReader reader;
    private readonly ZlibFeed zlibInput = new();
    private readonly ZLibStream zlib;
    private readonly byte[] one = new byte[1];

    public RfbDecoder(RecordingReader reader)
    {
        this.reader = reader;
        Width = BinaryPrimitives.ReadUInt16BigEndian(reader.ServerInit);
        Height = BinaryPrimitives.ReadUInt16BigEndian(reader.ServerInit.AsSpan(2));
        if (Width == 0 || Height == 0)
        {
            throw new InvalidDataException("the recording's desktop has no size");
        }

        Frame = new byte[FrameBytes(Width, Height)];
        zlib = new ZLibStream(zlibInput, CompressionMode.Decompress);
    }

    public static RfbDecoder Open(string path) => new(RecordingReader.Open(File.OpenRead(path)));

    /// <summary>The desktop's width now.</summary>
    public int Width { get; private set; }

    /// <summary>The desktop's height now.</summary>
    public int Height { get; private set; }

    /// <summary>The screen now: <see cref="Width"/> × <see cref="Height"/> pixels of R, G, B, 0.</summary>
    public byte[] Frame { get; private set; }

    /// <summary>The recording's end, known once <see cref="TryBeginMessage"/> returned false.</summary>
    public long EndMs => reader.EndMs;

    /// <summary>Reads the next message's type; false at the end of the recording. <paramref name="timeMs"/> is when it began to arrive.</summary>
    public bool TryBeginMessage(out byte type, out long timeMs)
    {
        var read = reader.Read(one);
        type = one[0];
        timeMs = reader.TimeMs;
        return read == 1;
    }

    /// <summary>Reads the rest of the message begun by <see cref="TryBeginMessage"/>, and applies it.</summary>
    public void ApplyMessage(byte type)
    {
        switch (type)
        {
            case 0:
                ApplyUpdate();
                break;
            case 1: // SetColourMapEntries: never sent for a true-colour format; skipped
                Skip(1);
                Skip(ReadU16At(2) * 6);
                break;
            case 2: // Bell
                break;
            case 3: // ServerCutText
                Skip(3);
                Skip(ReadU32());
                break;
            case 150: // EndOfContinuousUpdates
                break;
            default:
                throw new InvalidDataException($"the recording holds a server message of type {type}, which the recorder never asked for");
        }
    }

    /// <summary>Applies every message to the end; returns the recording's end time.</summary>
    public long ApplyAll()
    {
        while (TryBeginMessage(out var type, out _))
        {
            ApplyMessage(type);
        }

        return EndMs;
    }

    private void ApplyUpdate()
    {
        Skip(1);
        var rectangles = ReadU16();
        for (var i = 0; i < rectangles; i++)
        {
            var x = ReadU16();
            var y = ReadU16();
            var w = ReadU16();
            var h = ReadU16();
            var encoding = (int)ReadU32();
            switch (encoding)
            {
                case RfbEncodings.Raw:
                    ApplyRaw(x, y, w, h);
                    break;
                case RfbEncodings.CopyRect:
                    ApplyCopyRect(x, y, w, h, ReadU16(), ReadU16());
                    break;
                case RfbEncodings.Zrle:
                    ApplyZrle(x, y, w, h);
                    break;
                case RfbEncodings.DesktopSize:
                    if (w == 0 || h == 0)
                    {
                        throw new InvalidDataException("the recording resizes the desktop to nothing");
                    }

                    Frame = new byte[FrameBytes(w, h)];
                    Width = w;
                    Height = h;
                    break;
                default:
                    throw new InvalidDataException($"the recording holds a rectangle of encoding {encoding}, which the recorder never asked for");
            }
        }
    }

    /// <summary>The bytes of a <paramref name="w"/> × <paramref name="h"/> frame; a size beyond <see cref="MaxPixels"/> is a corrupt file.</summary>
    private static int FrameBytes(int w, int h)
    {
        var pixels = (long)w * h;
        if (pixels > MaxPixels)
        {
            throw new InvalidDataException($"the recording holds a {w}×{h} area, larger than any desktop it records");
        }

        return checked((int)(pixels * BytesPerPixel));
    }

    private void ApplyRaw(int x, int y, int w, int h)
    {
        var row = new byte[w * BytesPerPixel];
        for (var line = 0; line < h; line++)
        {
            reader.ReadExactly(row);
            PutRow(x, y + line, row);
        }
    }

    private void ApplyCopyRect(int x, int y, int w, int h, int sourceX, int sourceY)
    {
        var copy = new byte[FrameBytes(w, h)];
        for (var line = 0; line < h; line++)
        {
            GetRow(sourceX, sourceY + line, copy.AsSpan(line * w * BytesPerPixel, w * BytesPerPixel));
        }

        for (var line = 0; line < h; line++)
        {
            PutRow(x, y + line, copy.AsSpan(line * w * BytesPerPixel, w * BytesPerPixel));
        }
    }

    /// <summary>ZRLE: the rectangle's zlib bytes continue the connection's one zlib stream; inside, 64×64 tiles left to right, top to bottom.</summary>
    private void ApplyZrle(int x, int y, int w, int h)
    {
        // ZRLE's pixels are at most 3 bytes each (plus a byte a tile), and zlib adds little: a longer length is a corrupt
        // file, refused before anything of that size is allocated. The bytes are read in chunks all the same.
        var length = (long)ReadU32();
        if (length > FrameBytes(w, h) + ZlibSlackBytes)
        {
            throw new InvalidDataException($"a ZRLE rectangle of {w}×{h} claims {length} compressed bytes");
        }

        for (var left = length; left > 0;)
        {
            var chunk = new byte[Math.Min(left, 64 * 1024)];
            reader.ReadExactly(chunk);
            zlibInput.Append(chunk);
            left -= chunk.Length;
        }

        var tile = new byte[TileSize * TileSize * BytesPerPixel];
        for (var ty = y; ty < y + h; ty += TileSize)
        {
            var th = Math.Min(TileSize, y + h - ty);
            for (var tx = x; tx < x + w; tx += TileSize)
            {
                var tw = Math.Min(TileSize, x + w - tx);
                DecodeTile(tile, tw, th);
                for (var line = 0; line < th; line++)
                {
                    PutRow(tx, ty + line, tile.AsSpan(line * tw * BytesPerPixel, tw * BytesPerPixel));
                }
            }
        }
    }

    /// <summary>One ZRLE tile into <paramref name="tile"/>, <paramref name="w"/> pixels a row.</summary>
    private void DecodeTile(byte[] tile, int w, int h)
    {
        var pixels = w * h;
        var subencoding = ZByte();
        if (subencoding == 0)
        {
            for (var i = 0; i < pixels; i++)
            {
                ZPixel(tile, i);
            }
        }
        else if (subencoding == 1)
        {
            ZPixel(tile, 0);
            Fill(tile, 0, 1, pixels - 1);
        }
        else if (subencoding <= 16)
        {
            var palette = ZPalette(subencoding);
            var bits = subencoding == 2 ? 1 : subencoding <= 4 ? 2 : 4;
            var mask = (1 << bits) - 1;
            for (var row = 0; row < h; row++)
            {
                var bitsLeft = 0;
                var current = 0;
                for (var column = 0; column < w; column++)
                {
                    if (bitsLeft == 0)
                    {
                        current = ZByte();
                        bitsLeft = 8;
                    }

                    bitsLeft -= bits;
                    var index = (current >> bitsLeft) & mask;
                    SetPixel(tile, (row * w) + column, palette, index);
                }
            }
        }
        else if (subencoding == 128)
        {
            for (var at = 0; at < pixels;)
            {
                ZPixel(tile, at);
                var run = ZRunLength();
                CheckRun(at, run, pixels);
                Fill(tile, at, at + 1, run - 1);
                at += run;
            }
        }
        else if (subencoding >= 130)
        {
            var palette = ZPalette(subencoding - 128);
            for (var at = 0; at < pixels;)
            {
                var index = ZByte();
                var run = (index & 0x80) != 0 ? ZRunLength() : 1;
                CheckRun(at, run, pixels);
                for (var i = 0; i < run; i++)
                {
                    SetPixel(tile, at + i, palette, index & 0x7f);
                }

                at += run;
            }
        }
        else
        {
            throw new InvalidDataException($"a ZRLE tile has the unused subencoding {subencoding}");
        }
    }

    private static void CheckRun(int at, int run, int pixels)
    {
        if (at + run > pixels)
        {
            throw new InvalidDataException("a ZRLE run goes past its tile");
        }
    }

    private byte[] ZPalette(int size)
    {
        var palette = new byte[size * BytesPerPixel];
        for (var i = 0; i < size; i++)
        {
            ZPixel(palette, i);
        }

        return palette;
    }

    private static void SetPixel(byte[] tile, int at, byte[] palette, int index)
    {
        if (index * BytesPerPixel >= palette.Length)
        {
            throw new InvalidDataException("a ZRLE tile indexes past its palette");
        }

        palette.AsSpan(index * BytesPerPixel, BytesPerPixel).CopyTo(tile.AsSpan(at * BytesPerPixel));
    }

    private static void Fill(byte[] tile, int from, int at, int count)
    {
        for (var i = 0; i < count; i++)
        {
            tile.AsSpan(from * BytesPerPixel, BytesPerPixel).CopyTo(tile.AsSpan((at + i) * BytesPerPixel));
        }
    }

    /// <summary>A CPIXEL: R, G, B (the pixel's three used bytes), the fourth byte zero.</summary>
    private void ZPixel(byte[] into, int at)
    {
        var pixel = into.AsSpan(at * BytesPerPixel, BytesPerPixel);
        ZRead(pixel[..3]);
        pixel[3] = 0;
    }

    private int ZRunLength()
    {
        var length = 1;
        int next;
        do
        {
            next = ZByte();
            length += next;
        }
        while (next == 255);
        return length;
    }

    private byte ZByte()
    {
        Span<byte> value = stackalloc byte[1];
        ZRead(value);
        return value[0];
    }

    private void ZRead(Span<byte> into)
    {
        try
        {
            zlib.ReadExactly(into);
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException("a ZRLE rectangle ends before its tiles do");
        }
    }

    private void PutRow(int x, int y, ReadOnlySpan<byte> row)
    {
        if (y >= Height || x >= Width)
        {
            return;
        }

        var visible = Math.Min(row.Length / BytesPerPixel, Width - x) * BytesPerPixel;
        row[..visible].CopyTo(Frame.AsSpan(((y * Width) + x) * BytesPerPixel));
    }

    private void GetRow(int x, int y, Span<byte> row)
    {
        row.Clear();
        if (y >= Height || x >= Width)
        {
            return;
        }

        var visible = Math.Min(row.Length / BytesPerPixel, Width - x) * BytesPerPixel;
        Frame.AsSpan(((y * Width) + x) * BytesPerPixel, visible).CopyTo(row);
    }

    private void Skip(long count)
    {
        var buffer = new byte[Math.Min(count, 64 * 1024)];
        while (count > 0)
        {
            var chunk = (int)Math.Min(count, buffer.Length);
            reader.ReadExactly(buffer.AsSpan(0, chunk));
            count -= chunk;
        }
    }

    private int ReadU16()
    {
        Span<byte> value = stackalloc byte[2];
        reader.ReadExactly(value);
        return BinaryPrimitives.ReadUInt16BigEndian(value);
    }

    /// <summary>Skips <paramref name="skip"/> bytes, then reads a u16.</summary>
    private int ReadU16At(int skip)
    {
        Skip(skip);
        return ReadU16();
    }

    private uint ReadU32()
    {
        Span<byte> value = stackalloc byte[4];
        reader.ReadExactly(value);
        return BinaryPrimitives.ReadUInt32BigEndian(value);
    }

    public void Dispose()
    {
        zlib.Dispose();
        reader.Dispose();
    }

    /// <summary>The compressed bytes of every ZRLE rectangle so far, in order, as the one stream zlib reads.</summary>
    private sealed class ZlibFeed : Stream
    {
        private readonly Queue<byte[]> chunks = new();
        private int offset;

        public void Append(byte[] chunk)
        {
            if (chunk.Length > 0)
            {
                chunks.Enqueue(chunk);
            }
        }

        public override int Read(Span<byte> buffer)
        {
            var total = 0;
            while (total < buffer.Length && chunks.TryPeek(out var chunk))
            {
                var count = Math.Min(buffer.Length - total, chunk.Length - offset);
                chunk.AsSpan(offset, count).CopyTo(buffer[total..]);
                total += count;
                offset += count;
                if (offset == chunk.Length)
                {
                    chunks.Dequeue();
                    offset = 0;
                }
            }

            return total;
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
    }
}
