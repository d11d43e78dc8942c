using System.Net;
using System.Net.Sockets;
using k8s.Models;
using StreamSpace.Agent.Platforms.Kubernetes;
using StreamSpace.Agent.Tunnel;
using StreamSpace.Contracts;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Agent.Kubernetes;

/// <summary>
/// A Kubernetes session's VNC password: 8 random bytes, carried to the pod's Xvnc as TigerVNC's password file and
/// answered by the agent's tunnel, checked against a real Xvnc and TigerVNC's own vncpasswd.
/// </summary>
public sealed class VncPasswordTests
{
    private static readonly byte[] FilesKey = System.Security.Cryptography.RandomNumberGenerator.GetBytes(StreamSpace.Contracts.Tunnel.FileStreams.FilesKeyBytes);

    [Fact]
    public void Session_passwords_use_all_eight_bytes_with_any_value_and_never_repeat()
    {
        var passwords = Enumerable.Range(0, 500).Select(_ => VncPasswordFile.NewPassword()).ToList();

        Assert.All(passwords, p => Assert.Equal(8, p.Length));
        // A zero byte would cut the password short when Xvnc reads it back as a C string.
        Assert.DoesNotContain(passwords, p => p.Contains((byte)0));
        Assert.Equal(passwords.Count, passwords.Select(Convert.ToHexString).Distinct().Count());
        // 4000 uniform draws from 255 values leave hardly any value unused; text passwords (hex, letters) use 16 to 95.
        var used = passwords.SelectMany(p => p).Distinct().Count();
        Assert.True(used > 240, $"the passwords used only {used} distinct byte values");
        // Every position takes high and low values: no byte is held to a narrower range.
        for (var i = 0; i < 8; i++)
        {
            Assert.Contains(passwords, p => p[i] >= 0x80);
            Assert.Contains(passwords, p => p[i] < 0x20);
        }
    }

    [Fact]
    public async Task The_password_file_is_the_one_TigerVNCs_vncpasswd_writes_and_reads_back_to_the_password()
    {
        var password = "s3cr3t!X"u8.ToArray();
        Assert.Equal(await SimulatedSessionPod.VncPasswdAsync("s3cr3t!X"), VncPasswordFile.Write(password));
        Assert.Equal(password, VncPasswordFile.Read(VncPasswordFile.Write(password)));
    }

    [Fact]
    public async Task Xvnc_takes_the_secrets_password_file_and_the_tunnel_authenticates_with_bytes_no_text_password_could_carry()
    {
        // A newline, bytes that are not UTF-8 and non-printables: vncpasswd and an env var would have lost these.
        byte[] password = [0xFF, 0x0A, 0x80, 0x01, 0xC3, 0x7F, 0x20, 0xFE];
        var session = new SessionCommandPayload("sess-vncpw", Guid.NewGuid(), "alice", Templates.Xterm);
        var owner = new V1Deployment { Metadata = new V1ObjectMeta { Name = SessionObjects.DeploymentName(session.SessionId), Uid = Guid.NewGuid().ToString() } };
        var secret = SessionObjects.PasswordSecret(session, owner, password, null, FilesKey);

        var port = FreePort();
        await using var xvnc = await SimulatedSessionPod.StartAsync("127.0.0.1", port, secret.Data[SessionObjects.PasswordFileKey], session.SessionId);

        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(IPAddress.Loopback, port);
            await RfbBridge.AuthenticateToServerAsync(tcp.GetStream(), SessionObjects.TunnelPassword(secret), CancellationToken.None);
        }

        // The last byte counts too: a password differing only there is refused.
        var wrong = (byte[])password.Clone();
        wrong[7] ^= 0x01;
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(IPAddress.Loopback, port);
            var refused = await Assert.ThrowsAsync<InvalidDataException>(() =>
                RfbBridge.AuthenticateToServerAsync(tcp.GetStream(), SessionObjects.TunnelPassword(SessionObjects.PasswordSecret(session, owner, wrong, null, FilesKey)), CancellationToken.None));
            Assert.Contains("rejected the session password", refused.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_secret_from_an_agent_before_the_password_file_still_gives_the_tunnel_its_password()
    {
        // Sessions started before an upgrade keep their Secret, with the password as text under "password".
        var secret = new V1Secret { Data = new Dictionary<string, byte[]> { [SessionObjects.PasswordKey] = "0a1b2c3d"u8.ToArray() } };
        Assert.Equal("0a1b2c3d", SessionObjects.TunnelPassword(secret));
    }

    [Fact]
    public async Task The_file_with_a_view_only_password_is_the_one_vncpasswd_writes_for_two_lines_and_Xvnc_takes_both_passwords()
    {
        var (password, viewOnly) = ("full-pw1"u8.ToArray(), "view-pw2"u8.ToArray());
        var file = VncPasswordFile.Write(password, viewOnly);
        Assert.Equal(await VncPasswdAsync("full-pw1\nview-pw2\n"), file);
        Assert.Equal(password, VncPasswordFile.Read(file));
        Assert.Equal(viewOnly, VncPasswordFile.ReadViewOnly(file));

        var session = new SessionCommandPayload("sess-viewonly", Guid.NewGuid(), "alice", Templates.Xterm);
        var owner = new V1Deployment { Metadata = new V1ObjectMeta { Name = SessionObjects.DeploymentName(session.SessionId), Uid = Guid.NewGuid().ToString() } };
        var full = VncPasswordFile.NewPassword();
        var secret = SessionObjects.PasswordSecret(session, owner, full, VncPasswordFile.NewViewOnlyPassword(full), FilesKey);
        var port = FreePort();
        await using var xvnc = await SimulatedSessionPod.StartAsync("127.0.0.1", port, secret.Data[SessionObjects.PasswordFileKey], session.SessionId);
        foreach (var answer in new[] { SessionObjects.TunnelPassword(secret), SessionObjects.TunnelViewOnlyPassword(secret)! })
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(IPAddress.Loopback, port);
            await RfbBridge.AuthenticateToServerAsync(tcp.GetStream(), answer, CancellationToken.None);
        }

        Assert.NotEqual(SessionObjects.TunnelPassword(secret), SessionObjects.TunnelViewOnlyPassword(secret));
    }

    [Fact]
    public void A_session_without_a_view_only_password_refuses_a_view_only_viewer_and_never_gives_it_the_full_password()
    {
        // A Secret (or local session) from before sharing: the password file holds the full password only.
        var secret = new V1Secret { Data = new Dictionary<string, byte[]> { [SessionObjects.PasswordFileKey] = VncPasswordFile.Write("full-pw1"u8) } };
        var endpoint = new StreamSpace.Agent.Platforms.VncEndpoint("127.0.0.1", 5900, SessionObjects.TunnelPassword(secret))
        {
            ViewOnlyPassword = SessionObjects.TunnelViewOnlyPassword(secret),
        };

        Assert.Null(endpoint.ViewOnlyPassword);
        Assert.Equal("full-pw1", endpoint.PasswordFor(viewOnly: false));
        var refused = Assert.Throws<InvalidOperationException>(() => endpoint.PasswordFor(viewOnly: true));
        Assert.Contains("restart the session to share it view-only", refused.Message, StringComparison.Ordinal);
    }

    /// <summary>TigerVNC's vncpasswd -f, fed <paramref name="input"/> as typed (one password a line).</summary>
    private static async Task<byte[]> VncPasswdAsync(string input)
    {
        using var vncpasswd = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("vncpasswd", ["-f"]) { RedirectStandardInput = true, RedirectStandardOutput = true })
            ?? throw new InvalidOperationException("vncpasswd did not start; install tigervnc-tools");
        await vncpasswd.StandardInput.WriteAsync(input);
        vncpasswd.StandardInput.Close();
        using var output = new MemoryStream();
        await vncpasswd.StandardOutput.BaseStream.CopyToAsync(output);
        await vncpasswd.WaitForExitAsync();
        return output.ToArray();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
