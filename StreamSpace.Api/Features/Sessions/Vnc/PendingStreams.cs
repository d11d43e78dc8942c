using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using StreamSpace.Api.Features.Replicas;
using StreamSpace.Contracts.Tunnel;

namespace StreamSpace.Api.Features.Sessions.Vnc;

/// <summary>A data connection the agent opened for a viewer; the relay completes <see cref="Finish"/> when it is done with it.</summary>
public sealed class DataLink(Stream stream)
{
    private readonly TaskCompletionSource done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Stream Stream { get; } = stream;

    /// <summary>Completes when the relay no longer uses the connection; the transport that accepted it then closes it.</summary>
    public Task Done => done.Task;

    public void Finish() => done.TrySetResult();
}

/// <summary>A viewer's open, waiting for the agent's data connection or its failure report.</summary>
public sealed class PendingStream(Guid streamId, string sessionId, string agentId, string token, DateTimeOffset expiresAt)
{
    private readonly TaskCompletionSource<DataLink> arrival = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Guid StreamId { get; } = streamId;

    public string SessionId { get; } = sessionId;

    public string AgentId { get; } = agentId;

    public string Token { get; } = token;

    public DateTimeOffset ExpiresAt { get; } = expiresAt;

    /// <summary>The data connection; faults with <see cref="DataConnectionFailedException"/> when the agent reports a failure or is refused.</summary>
    public Task<DataLink> Arrival => arrival.Task;

    internal bool Attach(DataLink link) => arrival.TrySetResult(link);

    internal void Fail(string reason) => arrival.TrySetException(new DataConnectionFailedException(reason));
}

public sealed class DataConnectionFailedException(string reason) : Exception(reason);

/// <summary>What a data connection request gets.</summary>
public enum DataAdmission
{
    /// <summary>101: the connection becomes the pending viewer's stream.</summary>
    Upgrade,

    /// <summary>204: the agent's failure report reached the waiting viewer.</summary>
    Reported,

    /// <summary>401: unknown, expired or used token, or headers that do not match what it was issued for.</summary>
    Refused,

    /// <summary>503: this replica is stopping and waits for no stream under this token.</summary>
    Draining,
}

/// <summary>
/// The viewers of this replica waiting for their agent's data connection. Each has a single-use <c>dt1.</c> token,
/// valid for <see cref="DataConnection.TokenLifetime"/> and bound to its stream, session and agent. Tokens live only
/// here, because a data connection always ends at the replica that issued its token. They are keyed by their SHA-256,
/// so no lookup compares a secret in variable time.
/// </summary>
public sealed class PendingStreams(ReplicaIdentity replica, ViewerDrain drain, TimeProvider time, ILogger<PendingStreams> logger)
{
    private readonly ConcurrentDictionary<string, PendingStream> pending = new();

    public PendingStream Expect(string sessionId, string agentId)
    {
        var token = DataConnection.TokenPrefix + Base64Url.EncodeToString(replica.Id.ToByteArray()) + "." +
            Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        var stream = new PendingStream(Guid.CreateVersion7(), sessionId, agentId, token, time.GetUtcNow() + DataConnection.TokenLifetime);
        pending[Key(token)] = stream;
        return stream;
    }

    /// <summary>Forgets an open that ended (connected, failed or timed out): its token can no longer be used.</summary>
    public void Forget(PendingStream stream) => pending.TryRemove(new KeyValuePair<string, PendingStream>(Key(stream.Token), stream));

    /// <summary>
    /// Decides a data connection request. On <see cref="DataAdmission.Upgrade"/> the caller answers 101 and then
    /// hands the connection over with <see cref="Attach"/>; the token is used up either way.
    /// </summary>
    public (DataAdmission Admission, PendingStream? Stream) Admit(string? authorization, string? agentId, string? sessionId, string? error)
    {
        var token = TokenOf(authorization);
        // Anything but a data token (a VNC ticket, an agent key) is refused before any lookup.
        if (token is null || !token.StartsWith(DataConnection.TokenPrefix, StringComparison.Ordinal) ||
            !pending.TryRemove(Key(token), out var stream))
        {
            return (drain.IsDraining ? DataAdmission.Draining : DataAdmission.Refused, null);
        }

        if (stream.ExpiresAt <= time.GetUtcNow())
        {
            stream.Fail("the agent's data connection came too late");
            return (DataAdmission.Refused, null);
        }

        if (agentId != stream.AgentId || sessionId != stream.SessionId)
        {
            logger.LogWarning("Refused a data connection for session {SessionId}: it named agent {Agent} and session {Session}, not the ones its token was issued for",
                stream.SessionId, agentId, sessionId);
            stream.Fail("the data connection was refused");
            return (DataAdmission.Refused, null);
        }

        if (error is not null)
        {
            stream.Fail("could not reach the session's VNC server: " + Uri.UnescapeDataString(error));
            return (DataAdmission.Reported, null);
        }

        return (DataAdmission.Upgrade, stream);
    }

    /// <summary>The bearer token of an <c>Authorization</c> header, or null.</summary>
    public static string? TokenOf(string? authorization) =>
        authorization is { } header && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header["Bearer ".Length..].Trim() : null;

    /// <summary>The replica a data token names as its issuer (the part after <c>dt1.</c>), or null when it is no data token.</summary>
    public static Guid? IssuerOf(string? token)
    {
        if (token is null || !token.StartsWith(DataConnection.TokenPrefix, StringComparison.Ordinal))
        {
            return null;
        }

        var parts = token[DataConnection.TokenPrefix.Length..].Split('.');
        Span<byte> id = stackalloc byte[16];
        return parts.Length == 2 && Base64Url.IsValid(parts[0], out var length) && length == 16 &&
            Base64Url.DecodeFromChars(parts[0], id) == 16 ? new Guid(id) : null;
    }

    /// <summary>
    /// After <see cref="DataAdmission.Upgrade"/>: answers 101 with <paramref name="answer"/> and gives the upgraded
    /// connection to the viewer that waits for it; null when that viewer is gone. When answering fails the viewer is
    /// failed at once: its token is used up, so nothing else could arrive for it.
    /// </summary>
    public static async Task<DataLink?> UpgradeAsync(PendingStream stream, Func<Task<Stream>> answer)
    {
        Stream upgraded;
        try
        {
            upgraded = await answer();
        }
        catch
        {
            stream.Fail("the agent's data connection broke before it was answered");
            throw;
        }

        var link = new DataLink(upgraded);
        return stream.Attach(link) ? link : null;
    }

    private static string Key(string token) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}
