using System.Buffers.Binary;

namespace StreamSpace.Agent.Recording;

/// <summary>
/// Follows the server's messages through the bytes the recorder writes, reading headers and skipping bodies (no pixel
/// is decoded), for one thing: the desktop's size, so the recorder's update requests cover a desktop a viewer resized.
/// Knows what the recorder asked for; anything else makes it stop following (<see cref="Lost"/>), and the requests then
/// keep the last size known.
/// </summary>
public sealed class RfbMessageScanner(int width, int height)
{
    private const int BytesPerPixel = 4;

    private enum Expecting
    {
        MessageType,
        UpdateHeader,
        ColourMapHeader,
        CutTextHeader,
        RectangleHeader,
        ZrleLength,
    }

    private readonly byte[] header = new byte[12];
    private Expecting expecting = Expecting.MessageType;
    private int headerWanted = 1;
    private int headerHave;
    private long skip;
    private int rectanglesLeft;
    private long size = Pack(width, height);

    /// <summary>The desktop's size as the server last said it.</summary>
    public (int Width, int Height) Size
    {
        get
        {
            var packed = Interlocked.Read(ref size);
            return ((int)(packed >> 16), (int)(packed & 0xffff));
        }
    }

    /// <summary>Why it stopped following the stream; null while it follows.</summary>
    public string? Lost { get; private set; }

    public void Feed(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty && Lost is null)
        {
            if (skip > 0)
            {
                var skipped = (int)Math.Min(skip, bytes.Length);
                skip -= skipped;
                bytes = bytes[skipped..];
                continue;
            }

            var taken = Math.Min(headerWanted - headerHave, bytes.Length);
            bytes[..taken].CopyTo(header.AsSpan(headerHave));
            headerHave += taken;
            bytes = bytes[taken..];
            if (headerHave == headerWanted)
            {
                headerHave = 0;
                Advance();
            }
        }
    }

    private void Advance()
    {
        switch (expecting)
        {
            case Expecting.MessageType:
                switch (header[0])
                {
                    case 0:
                        Expect(Expecting.UpdateHeader, 3);
                        break;
                    case 1:
                        Expect(Expecting.ColourMapHeader, 5);
                        break;
                    case 2 or 150: // Bell, EndOfContinuousUpdates: the type is the whole message
                        Expect(Expecting.MessageType, 1);
                        break;
                    case 3:
                        Expect(Expecting.CutTextHeader, 7);
                        break;
                    default:
                        Lost = $"a server message of type {header[0]}";
                        break;
                }

                break;
            case Expecting.UpdateHeader:
                rectanglesLeft = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(1));
                NextRectangle();
                break;
            case Expecting.ColourMapHeader:
                skip = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(3)) * 6L;
                Expect(Expecting.MessageType, 1);
                break;
            case Expecting.CutTextHeader:
                skip = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(3));
                Expect(Expecting.MessageType, 1);
                break;
            case Expecting.RectangleHeader:
                var w = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(4));
                var h = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(6));
                switch (BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(8)))
                {
                    case RfbEncodings.Raw:
                        skip = (long)w * h * BytesPerPixel;
                        NextRectangle();
                        break;
                    case RfbEncodings.CopyRect:
                        skip = 4;
                        NextRectangle();
                        break;
                    case RfbEncodings.Zrle:
                        Expect(Expecting.ZrleLength, 4);
                        break;
                    case RfbEncodings.DesktopSize:
                        Interlocked.Exchange(ref size, Pack(w, h));
                        NextRectangle();
                        break;
                    case var other:
                        Lost = $"a rectangle of encoding {other}";
                        break;
                }

                break;
            case Expecting.ZrleLength:
                skip = BinaryPrimitives.ReadUInt32BigEndian(header);
                NextRectangle();
                break;
        }
    }

    private void NextRectangle()
    {
        if (rectanglesLeft-- > 0)
        {
            Expect(Expecting.RectangleHeader, 12);
        }
        else
        {
            Expect(Expecting.MessageType, 1);
        }
    }

    private void Expect(Expecting next, int bytes)
    {
        expecting = next;
        headerWanted = bytes;
    }

    private static long Pack(int width, int height) => ((long)width << 16) | (uint)height;
}
