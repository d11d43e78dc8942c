namespace StreamSpace.Api.Features.Replicas;

/// <summary>
/// Who this API process is among the control plane's replicas. The id is new at every start, so a restarted process
/// is a new replica and nothing addressed to its predecessor reaches it by mistake.
/// </summary>
public sealed class ReplicaIdentity
{
    private string? dataUrl;

    public Guid Id { get; } = Guid.CreateVersion7();

    /// <summary>Where agents dial this replica's data connections; null until the data listener has bound its port.</summary>
    public string? DataUrl => Volatile.Read(ref dataUrl);

    public void SetDataUrl(string url) => Volatile.Write(ref dataUrl, url);
}
