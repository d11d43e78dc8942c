using System.Net;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using StreamSpace.Agent.Tunnel;
using StreamSpace.Contracts;

namespace StreamSpace.Agent.Platforms.Kubernetes;

/// <summary>The agent's writes of a session's objects in the cluster, each idempotent: repeating one after a partial failure repairs the session.</summary>
public sealed class SessionObjectClient(IKubernetes client, string ns, AgentSettings settings, TimeProvider time, ILogger logger)
{
    /// <summary>How long a start waits for the Secret of an earlier Deployment of the session to be collected.</summary>
    private static readonly TimeSpan OldSecretTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan OldSecretPoll = TimeSpan.FromMilliseconds(200);

    /// <summary>Creates the session's Deployment; a repeated start finds it made already and uses it (its Secret may not exist yet).</summary>
    public async Task<V1Deployment> CreateDeploymentAsync(SessionCommandPayload session, CancellationToken cancellationToken)
    {
        var id = session.SessionId;
        var deployment = SessionObjects.Deployment(session, settings);
        try
        {
            deployment = await client.AppsV1.CreateNamespacedDeploymentAsync(deployment, ns, cancellationToken: cancellationToken);
            logger.LogInformation("Session {SessionId}: created Deployment {Deployment} ({Image}) for {User}",
                id, deployment.Metadata.Name, session.Template.Image, session.Username);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            deployment = await client.AppsV1.ReadNamespacedDeploymentAsync(deployment.Metadata.Name, ns, cancellationToken: cancellationToken);
            logger.LogInformation("Session {SessionId}: Deployment {Deployment} exists already; using it", id, deployment.Metadata.Name);
        }

        return deployment;
    }

    /// <summary>
    /// Creates the Secret the Deployment's pod mounts. One that exists already is kept when this Deployment owns it (an
    /// earlier start made it, and the pod uses that password). One of an earlier Deployment of the session (deleted by
    /// hand while hibernated) is still being collected: its deletion is waited out, or the pod would mount a Secret that vanishes.
    /// One that no Deployment owns (left by a delete with <c>--cascade=orphan</c>) is never collected, and the agent may not
    /// delete Secrets: that start fails at once, naming the Secret to delete.
    /// </summary>
    public async Task CreatePasswordSecretAsync(SessionCommandPayload session, V1Deployment deployment, CancellationToken cancellationToken)
    {
        var name = SessionObjects.SecretName(session.SessionId);
        var giveUp = time.GetUtcNow() + OldSecretTimeout;
        var waiting = false;
        while (true)
        {
            try
            {
                var password = VncPasswordFile.NewPassword();
                await client.CoreV1.CreateNamespacedSecretAsync(SessionObjects.PasswordSecret(session, deployment, password, VncPasswordFile.NewViewOnlyPassword(password),
                        System.Security.Cryptography.RandomNumberGenerator.GetBytes(Contracts.Tunnel.FileStreams.FilesKeyBytes)), ns,
                    cancellationToken: cancellationToken);
                return;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
            {
                var existing = await ReadSecretAsync(name, cancellationToken);
                if (existing is { Metadata.DeletionTimestamp: null } && existing.Metadata.OwnerReferences?.Any(o => o.Uid == deployment.Metadata.Uid) is true)
                {
                    return;
                }

                if (existing is { Metadata.DeletionTimestamp: null } && existing.Metadata.OwnerReferences is null or { Count: 0 })
                {
                    throw new InvalidOperationException(
                        $"Secret {name} in {ns} is left over from an earlier start and nothing will delete it; delete it (kubectl -n {ns} delete secret {name}) and start the session again");
                }

                if (time.GetUtcNow() > giveUp)
                {
                    throw new InvalidOperationException($"Secret {name} of an earlier Deployment of the session was not deleted within {OldSecretTimeout.TotalSeconds:0}s");
                }

                if (!waiting)
                {
                    logger.LogInformation("Session {SessionId}: Secret {Secret} of an earlier Deployment is still being deleted; waiting for it", session.SessionId, name);
                    waiting = true;
                }

                await Task.Delay(OldSecretPoll, time, cancellationToken);
            }
        }
    }

    private async Task<V1Secret?> ReadSecretAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            return await client.CoreV1.ReadNamespacedSecretAsync(name, ns, cancellationToken: cancellationToken);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public async Task CreateHomeClaimAsync(SessionCommandPayload session, CancellationToken cancellationToken)
    {
        try
        {
            await client.CoreV1.CreateNamespacedPersistentVolumeClaimAsync(SessionObjects.HomeClaim(session, settings), ns, cancellationToken: cancellationToken);
            logger.LogInformation("Created home volume {Claim} for {User}", SessionObjects.HomeClaimName(session.Username), session.Username);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            // The user's home from an earlier session: reused, which is the point.
        }
    }

    /// <summary>Sets the Deployment's replicas through its scale subresource; false when the Deployment does not exist.</summary>
    public async Task<bool> ScaleAsync(string sessionId, int replicas, CancellationToken cancellationToken)
    {
        // A merge patch names no resourceVersion, so it cannot hit a 409 Conflict the way a read-modify-replace can.
        var patch = new V1Patch(JsonSerializer.Serialize(new { spec = new { replicas } }), V1Patch.PatchType.MergePatch);
        try
        {
            await client.AppsV1.PatchNamespacedDeploymentScaleAsync(patch, SessionObjects.DeploymentName(sessionId), ns, cancellationToken: cancellationToken);
            logger.LogInformation("Session {SessionId}: scaled to {Replicas}", sessionId, replicas);
            return true;
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    /// <summary>Deletes the session's Deployment; the garbage collector removes its pods and Secret. The home PVC has no owner and stays.</summary>
    public async Task DeleteDeploymentAsync(string sessionId, CancellationToken cancellationToken)
    {
        try
        {
            await client.AppsV1.DeleteNamespacedDeploymentAsync(SessionObjects.DeploymentName(sessionId), ns,
                propagationPolicy: "Background", cancellationToken: cancellationToken);
            logger.LogInformation("Session {SessionId}: deleted Deployment {Deployment}", sessionId, SessionObjects.DeploymentName(sessionId));
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            // Already gone: stopping a missing session succeeds.
        }
    }
}
