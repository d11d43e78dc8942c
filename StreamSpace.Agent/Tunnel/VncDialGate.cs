namespace StreamSpace.Agent.Tunnel;

/// <summary>
/// At most <see cref="PerSession"/> of the agent's connections to one session's VNC server are between connect and
/// authenticated at a time. Xvnc listens with a backlog of 5, so a burst of viewers (a replica's viewers reconnecting
/// together after 4307) would overflow it: the kernel drops the extra SYNs and they retry only after 1 s and 3 s. Xvnc
/// also counts each unauthenticated connection from an address and refuses the sixth outright.
/// </summary>
public sealed class VncDialGate
{
    public const int PerSession = 4;
    private readonly Dictionary<string, (SemaphoreSlim Slots, int Users)> sessions = [];

    /// <summary>Waits for a slot of the session; disposing the result gives it back.</summary>
    public async Task<IDisposable> EnterAsync(string sessionId, CancellationToken cancellationToken)
    {
        SemaphoreSlim slots;
        lock (sessions)
        {
            if (!sessions.TryGetValue(sessionId, out var entry))
            {
                entry = (new SemaphoreSlim(PerSession, PerSession), 0);
            }

            sessions[sessionId] = (entry.Slots, entry.Users + 1);
            slots = entry.Slots;
        }

        try
        {
            await slots.WaitAsync(cancellationToken);
        }
        catch
        {
            Leave(sessionId, release: false);
            throw;
        }

        return new Slot(this, sessionId);
    }

    private void Leave(string sessionId, bool release)
    {
        lock (sessions)
        {
            var entry = sessions[sessionId];
            if (release)
            {
                entry.Slots.Release();
            }

            if (entry.Users == 1)
            {
                sessions.Remove(sessionId);
                entry.Slots.Dispose();
            }
            else
            {
                sessions[sessionId] = (entry.Slots, entry.Users - 1);
            }
        }
    }

    private sealed class Slot(VncDialGate gate, string sessionId) : IDisposable
    {
        private int disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) == 0)
            {
                gate.Leave(sessionId, release: true);
            }
        }
    }
}
