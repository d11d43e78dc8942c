using System.Buffers.Binary;
using System.IO.Compression;
using StreamSpace.Agent.Recording;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Tests.Agent.Recording;

/// <summary>The recording decoder on a hand-built stream: each ZRLE subencoding, one zlib stream across rectangles, records split anywhere.</summary>
public sealed class RfbDecoderTests
{
    private const int Width = 100;
    private const int Height = 70;
    private static readonly byte[] Teal = [10, 20, 30];
    private static readonly byte[] Red = [255, 0, 0];
    private static readonly byte[] Blue = [0, 0, 255];
    private static readonly byte[] White = [255, 255, 255];
    private static readonly byte[] Black = [0, 0, 0];
    private static readonly byte[] Green = [0, 200, 0];

    [Fact]
    public void Zrle_tiles_of_every_kind_copy_rects_and_raw_rects_land_where_the_server_put_them()
    {
        using var decoder = new RfbDecoder(RecordingReader.Open(new MemoryStream(Recording())));
        Assert.Equal((Width, Height), (decoder.Width, decoder.Height));
        Assert.Equal(1234, decoder.ApplyAll());

        // Tile (0,0) 64×64: solid, then overwritten at its corner by the second rectangle's plain RLE, then copied.
        Assert.Equal(Green, Pixel(decoder, 0, 0));
        Assert.Equal(Green, Pixel(decoder, 3, 3));
        Assert.Equal(Teal, Pixel(decoder, 4, 4));
        Assert.Equal(Teal, Pixel(decoder, 63, 63));
        // Tile (64,0) 36×64: raw, R = x, G = y.
        Assert.Equal([64, 0, 7], Pixel(decoder, 64, 0));
        Assert.Equal([99, 63, 7], Pixel(decoder, 99, 63));
        // Tile (0,64) 64×6: palette RLE, a run of 300 red, then single blue indexes.
        Assert.Equal(Red, Pixel(decoder, 0, 64));
        Assert.Equal(Red, Pixel(decoder, 299 - 256, 68));
        Assert.Equal(Blue, Pixel(decoder, 300 - 256, 68));
        Assert.Equal(Blue, Pixel(decoder, 63, 69));
        // Tile (64,64) 36×6: packed palette, one bit a pixel, white and black alternating, each row padded to a byte.
        Assert.Equal(White, Pixel(decoder, 64, 64));
        Assert.Equal(Black, Pixel(decoder, 65, 64));
        Assert.Equal(Black, Pixel(decoder, 99, 69));
        // CopyRect of the green corner to (10,10); a raw 2×1 at (20,20).
        Assert.Equal(Green, Pixel(decoder, 10, 10));
        Assert.Equal(Green, Pixel(decoder, 13, 13));
        Assert.Equal([1, 2, 3], Pixel(decoder, 20, 20));
        Assert.Equal([4, 5, 6], Pixel(decoder, 21, 20));
        Assert.All(Enumerable.Range(0, Width * Height), i => Assert.Equal(0, decoder.Frame[(i * 4) + 3]));
    }

    [Fact]
    public void The_scanner_follows_the_same_stream_byte_by_byte_to_a_new_desktop_size()
    {
        var scanner = new RfbMessageScanner(Width, Height);
        byte[] resize = [0, 0, 0, 1, .. Header(0, 0, 1600, 1000, -223)];
        foreach (var one in (byte[])[.. ServerStream(), .. resize])
        {
            scanner.Feed([one]);
        }

        Assert.Null(scanner.Lost);
        Assert.Equal((1600, 1000), scanner.Size);
        scanner.Feed([99]);
        Assert.Equal("a server message of type 99", scanner.Lost);
    }

    [Fact]
    public void A_file_without_the_magic_is_refused()
    {
        Assert.Throws<InvalidDataException>(() => RecordingReader.Open(new MemoryStream("RFB 003.008\n"u8.ToArray())));
    }

    [Theory]
    [InlineData("a desktop resized beyond any screen", new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x21 })]
    [InlineData("a copy of a vast area", new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0 })]
    [InlineData("a small ZRLE rectangle claiming 4 GiB", new byte[] { 0, 4, 0, 4, 0, 0, 0, 16, 0xFF, 0xFF, 0xFF, 0xFF })]
    public void A_corrupt_size_or_length_is_invalid_data_not_an_overflow_or_out_of_memory(string corruption, byte[] sizeEncodingAndRest)
    {
        // One update of one rectangle at (0,0): width, height, encoding and what follows come from the case.
        byte[] update = [0, 0, 0, 1, 0, 0, 0, 0, .. sizeEncodingAndRest];
        using var decoder = new RfbDecoder(RecordingReader.Open(new MemoryStream(Recording(update))));
        var refused = Assert.Throws<InvalidDataException>(() => decoder.ApplyAll());
        Assert.False(string.IsNullOrEmpty(refused.Message), corruption);
    }

    private static byte[] Pixel(RfbDecoder decoder, int x, int y) => decoder.Frame.AsSpan(((y * Width) + x) * 4, 3).ToArray();

    /// <summary>The server's stream cut into records of 7 bytes, 10 ms apart, after ServerInit and before an end record at 1234 ms.</summary>
    private static byte[] Recording(byte[]? serverStream = null)
    {
        var file = new MemoryStream();
        file.Write(RecordingFormat.Magic);
        var serverInit = new byte[24 + 4];
        BinaryPrimitives.WriteUInt16BigEndian(serverInit, Width);
        BinaryPrimitives.WriteUInt16BigEndian(serverInit.AsSpan(2), Height);
        BinaryPrimitives.WriteUInt32BigEndian(serverInit.AsSpan(20), 4);
        "test"u8.CopyTo(serverInit.AsSpan(24));
        WriteRecord(file, 0, serverInit);

        var stream = serverStream ?? ServerStream();
        for (var at = 0; at < stream.Length; at += 7)
        {
            WriteRecord(file, (uint)(10 + at), stream.AsSpan(at, Math.Min(7, stream.Length - at)));
        }

        WriteRecord(file, 1234, []);
        return file.ToArray();
    }

    private static void WriteRecord(Stream file, uint ms, ReadOnlySpan<byte> bytes)
    {
        var header = new byte[RecordingFormat.RecordHeaderBytes];
        RecordingFormat.WriteRecordHeader(header, ms, bytes.Length);
        file.Write(header);
        file.Write(bytes);
    }

    private static byte[] ServerStream()
    {
        var compressed = new MemoryStream();
        using var zlib = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true);
        var server = new MemoryStream();

        // Message 1: one ZRLE rectangle of four tiles.
        var tiles = new MemoryStream();
        tiles.WriteByte(1); // solid
        tiles.Write(Teal);
        tiles.WriteByte(0); // raw
        for (var y = 0; y < 64; y++)
        {
            for (var x = 64; x < Width; x++)
            {
                tiles.Write([(byte)x, (byte)y, 7]);
            }
        }

        tiles.WriteByte(128 + 2); // palette RLE, two colours
        tiles.Write(Red);
        tiles.Write(Blue);
        tiles.Write([0x80, 255, 299 - 255]); // index 0, a run of 1 + 255 + 44 = 300
        for (var i = 300; i < 64 * 6; i++)
        {
            tiles.WriteByte(1);
        }

        tiles.WriteByte(2); // packed palette, two colours: one bit a pixel
        tiles.Write(White);
        tiles.Write(Black);
        for (var y = 0; y < 6; y++)
        {
            tiles.Write([0b1010_1010 ^ 0xff, 0x55, 0x55, 0x55, 0x50]); // 0,1,0,1… for 36 pixels, padded
        }

        Update(server, [Zrle(zlib, compressed, 0, 0, Width, Height, tiles.ToArray())]);

        // A bell and clipboard text between updates.
        server.WriteByte(2);
        server.Write([3, 0, 0, 0, 0, 0, 0, 5, .. "hello"u8]);

        // Message 2: plain RLE in the same zlib stream, a CopyRect of it, and a raw rectangle.
        var rle = new MemoryStream();
        rle.WriteByte(128);
        rle.Write(Green);
        rle.WriteByte(15); // a run of 16
        var copy = Header(10, 10, 4, 4, 1);
        var raw = Header(20, 20, 2, 1, 0);
        Update(server, [Zrle(zlib, compressed, 0, 0, 4, 4, rle.ToArray()), [.. copy, 0, 0, 0, 0], [.. raw, 1, 2, 3, 0, 4, 5, 6, 0]]);
        return server.ToArray();
    }

    private static void Update(Stream server, byte[][] rectangles)
    {
        server.Write([0, 0, (byte)(rectangles.Length >> 8), (byte)rectangles.Length]);
        foreach (var rectangle in rectangles)
        {
            server.Write(rectangle);
        }
    }

    private static byte[] Header(int x, int y, int w, int h, int encoding)
    {
        var header = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(header, (ushort)x);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(2), (ushort)y);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(4), (ushort)w);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(6), (ushort)h);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(8), encoding);
        return header;
    }

    /// <summary>A ZRLE rectangle: its tiles through the connection's one zlib stream, sync-flushed, as the server does.</summary>
    private static byte[] Zrle(ZLibStream zlib, MemoryStream compressed, int x, int y, int w, int h, byte[] tiles)
    {
        var before = compressed.Length;
        zlib.Write(tiles);
        zlib.Flush();
        var data = compressed.ToArray()[(int)before..];
        var length = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(length, (uint)data.Length);
        return [.. Header(x, y, w, h, 16), .. length, .. data];
    }
}
