namespace StreamSpace.Agent.Recording;

/// <summary>The RFB encodings the recorder asks for, and so the only ones its scanner and decoder meet.</summary>
internal static class RfbEncodings
{
    public const int Raw = 0;
    public const int CopyRect = 1;
    public const int Zrle = 16;

    /// <summary>The DesktopSize pseudo-encoding: a rectangle that gives the desktop's new size.</summary>
    public const int DesktopSize = -223;
}
