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
        var secret = SessionObjects.PasswordSecret(session, owner, password, FilesKey);

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
                RfbBridge.AuthenticateToServerAsync(tcp.GetStream(), SessionObjects.TunnelPassword(SessionObjects.PasswordSecret(session, owner, wrong, FilesKey)), CancellationToken.None));
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

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
