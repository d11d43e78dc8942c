using System.Globalization;

namespace StreamSpace.Agent.Platforms.Local;

/// <summary>The OS account a user's sessions run as.</summary>
public sealed record SessionAccount(string Name, int Uid, int Gid);

/// <summary>
/// Gives each StreamSpace user an unprivileged OS account of their own, created on first use in LOCAL_UID_RANGE. The
/// account is named after the user's id, never the username, so a user deleted and created again with the same name
/// gets a different account and home. With LOCAL_ISOLATION=none every session runs as the agent's own account.
/// </summary>
public sealed class SessionAccounts(AgentSettings settings, ILogger<SessionAccounts> logger)
{
    private const string Shell = "/bin/bash";
    // Process-wide: useradd locks /etc/passwd, and several agents may share a process (tests).
    private static readonly SemaphoreSlim creating = new(1, 1);

    public bool Isolated => settings.LocalIsolation == LocalIsolation.Accounts;

    /// <summary>
    /// ss- and 16 hex digits of a hash of the user's id. Not the id's own first digits: user ids are UUIDv7, whose
    /// leading digits are a millisecond timestamp, so two users created in the same millisecond would share them.
    /// </summary>
    public static string NameFor(Guid userId) =>
        "ss-" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.ASCII.GetBytes(userId.ToString())))[..16];

    /// <summary>The GECOS field marks the account as this user's, so a name collision is found instead of shared.</summary>
    private static string CommentFor(Guid userId) => $"StreamSpace user {userId}";

    /// <summary>The user's account, created (with <paramref name="home"/> as its home) when it does not exist yet.</summary>
    public async Task<SessionAccount> ForUserAsync(Guid userId, string home, CancellationToken cancellationToken)
    {
        if (!Isolated)
        {
            return new SessionAccount(Environment.UserName, UnixFiles.EffectiveUid(), UnixFiles.EffectiveGid());
        }

        // Looked up at every start, not cached: an admin may remove the account of a user (README) while the agent runs.
        // One at a time: two sessions of a new user starting together must not both run useradd.
        await creating.WaitAsync(cancellationToken);
        try
        {
            return await FindAsync(userId, cancellationToken) ?? await CreateAsync(userId, home, cancellationToken);
        }
        finally
        {
            creating.Release();
        }
    }

    private async Task<SessionAccount?> FindAsync(Guid userId, CancellationToken cancellationToken)
    {
        var name = NameFor(userId);
        var (exitCode, output) = await RunAsync("getent", ["passwd", name], cancellationToken);
        if (exitCode != 0)
        {
            return null;
        }

        // name:password:uid:gid:gecos:home:shell
        var fields = output.Trim().Split(':');
        if (fields.Length < 7 || fields[4] != CommentFor(userId))
        {
            throw new InvalidOperationException($"the OS account {name} exists but does not belong to StreamSpace user {userId}; rename or remove it (userdel {name})");
        }

        return new SessionAccount(name, int.Parse(fields[2], CultureInfo.InvariantCulture), int.Parse(fields[3], CultureInfo.InvariantCulture));
    }

    private async Task<SessionAccount> CreateAsync(Guid userId, string home, CancellationToken cancellationToken)
    {
        var name = NameFor(userId);
        var (first, last) = settings.LocalUids;
        var range = (string key) => new[] { "-K", $"{key}_MIN={first}", "-K", $"{key}_MAX={last}" };
        // No password (the account is locked), no lastlog entry (sparse files sized by uid), a group of its own.
        var (exitCode, output) = await RunAsync("useradd",
            [.. range("UID"), .. range("GID"), "--user-group", "--no-create-home", "--no-log-init", "--home-dir", home, "--shell", Shell,
             "--comment", CommentFor(userId), name], cancellationToken);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"could not create the OS account {name} for the user's sessions: {output.Trim()} (is LOCAL_UID_RANGE {settings.LocalUidRange} full?)");
        }

        var account = await FindAsync(userId, cancellationToken)
            ?? throw new InvalidOperationException($"useradd created {name}, but getent does not find it");
        logger.LogInformation("Created OS account {Account} (uid {Uid}) for user {UserId}", account.Name, account.Uid, userId);
        return account;
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string program, string[] arguments, CancellationToken cancellationToken)
    {
        var start = new System.Diagnostics.ProcessStartInfo(program, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = System.Diagnostics.Process.Start(start) ?? throw new InvalidOperationException($"could not run {program}");
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return (process.ExitCode, await output + await error);
    }
}
