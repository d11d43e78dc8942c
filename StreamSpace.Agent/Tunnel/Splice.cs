using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace StreamSpace.Agent.Tunnel;

/// <summary>
/// Moves a viewer's bytes between the session's VNC socket and the data connection with splice(2) through a pipe, so
/// they never enter user space. One thread per direction (poll, not async: .NET keeps its sockets O_NONBLOCK and in
/// epoll, and no .NET operation may be pending on a socket while it is spliced). Teardown is ordered so that no fd is
/// ever closed under a running splice, which could otherwise write into a reused fd number: shut both sockets down
/// (which wakes the threads), join both threads, close the pipes, and only then may the caller dispose the sockets.
/// </summary>
public static partial class Splice
{
    private const int ChunkBytes = 64 * 1024;
    private const int ThreadStackBytes = 256 * 1024;
    // A thread rechecks whether the relay is stopping at least this often while it waits in poll.
    private const int PollMilliseconds = 1000;

    /// <summary>
    /// Relays until either side ends or <paramref name="cancellationToken"/> fires. <paramref name="input"/> is called
    /// with each count of bytes moved from the data connection to the VNC server (the viewer's input), and
    /// <paramref name="output"/> with each count moved the other way (the pixels).
    /// A direction the kernel cannot splice (EINVAL or ENOSYS before any byte moved) copies through a user-space buffer.
    /// </summary>
    public static async Task RunAsync(Socket vnc, Socket data, Action<int> input, Action<int> output, CancellationToken cancellationToken)
    {
        var vncRef = false;
        var dataRef = false;
        vnc.SafeHandle.DangerousAddRef(ref vncRef);
        data.SafeHandle.DangerousAddRef(ref dataRef);
        try
        {
            var vncFd = (int)vnc.SafeHandle.DangerousGetHandle();
            var dataFd = (int)data.SafeHandle.DangerousGetHandle();
            using var toServer = Direction.Create(dataFd, vncFd, input);
            using var toViewer = Direction.Create(vncFd, dataFd, output);
            var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var threads = new[] { toServer.Start(first), toViewer.Start(first) };
            await using (cancellationToken.Register(() => first.TrySetResult()))
            {
                await first.Task;
            }

            toServer.Stop();
            toViewer.Stop();
            ShutdownQuietly(vnc);
            ShutdownQuietly(data);
            await Task.WhenAll(threads);
        }
        finally
        {
            // The pipes are closed (Direction.Dispose) and both threads have ended: no splice runs on these fds now.
            if (dataRef)
            {
                data.SafeHandle.DangerousRelease();
            }

            if (vncRef)
            {
                vnc.SafeHandle.DangerousRelease();
            }
        }
    }

    private static void ShutdownQuietly(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // Not connected any more: nothing to wake.
        }
    }

    /// <summary>One direction: its source and destination fds, its own pipe, and its thread.</summary>
    private sealed class Direction : IDisposable
    {
        private readonly int source;
        private readonly int destination;
        private readonly int pipeRead;
        private readonly int pipeWrite;
        private readonly Action<int>? moved;
        private volatile bool stopping;

        private Direction(int source, int destination, int pipeRead, int pipeWrite, Action<int>? moved)
        {
            (this.source, this.destination, this.pipeRead, this.pipeWrite, this.moved) = (source, destination, pipeRead, pipeWrite, moved);
        }

        public static unsafe Direction Create(int source, int destination, Action<int>? moved)
        {
            var fds = stackalloc int[2];
            if (Native.pipe2(fds, Native.O_NONBLOCK | Native.O_CLOEXEC) != 0)
            {
                throw new IOException($"pipe2 failed: errno {Marshal.GetLastPInvokeError()} (an unprivileged agent may have reached fs.pipe-user-pages-soft)");
            }

            return new Direction(source, destination, fds[0], fds[1], moved);
        }

        public Task Start(TaskCompletionSource first)
        {
            var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var thread = new Thread(() =>
            {
                try
                {
                    Run();
                }
                finally
                {
                    first.TrySetResult();
                    ended.TrySetResult();
                }
            }, ThreadStackBytes) { IsBackground = true, Name = "vnc splice" };
            thread.Start();
            return ended.Task;
        }

        public void Stop() => stopping = true;

        public void Dispose()
        {
            Native.close(pipeRead);
            Native.close(pipeWrite);
        }

        private void Run()
        {
            var movedAny = false;
            while (!stopping)
            {
                var read = Native.splice(source, 0, pipeWrite, 0, ChunkBytes, Native.SPLICE_F_MOVE | Native.SPLICE_F_NONBLOCK);
                if (read == 0)
                {
                    break;
                }

                if (read < 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == Native.EAGAIN)
                    {
                        Wait(source, Native.POLLIN);
                        continue;
                    }

                    if (errno == Native.EINTR)
                    {
                        continue;
                    }

                    if (!movedAny && errno is Native.EINVAL or Native.ENOSYS)
                    {
                        Copy();
                    }

                    return;
                }

                movedAny = true;
                if (!Drain(read))
                {
                    return;
                }

                moved?.Invoke((int)read);
            }

            if (!stopping)
            {
                // The source ended: the other side learns it, and the relay tears down.
                Native.shutdown(destination, Native.SHUT_WR);
            }
        }

        /// <summary>The same loop through a user-space buffer, for sockets the kernel does not splice.</summary>
        private unsafe void Copy()
        {
            var buffer = new byte[ChunkBytes];
            fixed (byte* start = buffer)
            {
                while (!stopping)
                {
                    var read = Native.read(source, start, ChunkBytes);
                    if (read < 0 && Marshal.GetLastPInvokeError() is Native.EAGAIN or Native.EINTR)
                    {
                        Wait(source, Native.POLLIN);
                        continue;
                    }

                    if (read <= 0)
                    {
                        break;
                    }

                    for (nint done = 0; done < read && !stopping;)
                    {
                        var written = Native.write(destination, start + done, (nuint)(read - done));
                        if (written < 0 && Marshal.GetLastPInvokeError() is Native.EAGAIN or Native.EINTR)
                        {
                            Wait(destination, Native.POLLOUT);
                        }
                        else if (written <= 0)
                        {
                            return;
                        }
                        else
                        {
                            done += written;
                        }
                    }

                    moved?.Invoke((int)read);
                }
            }

            if (!stopping)
            {
                Native.shutdown(destination, Native.SHUT_WR);
            }
        }

        /// <summary>Moves what the pipe holds to the destination; false once the destination is gone or the relay stops.</summary>
        private bool Drain(nint pending)
        {
            while (pending > 0)
            {
                if (stopping)
                {
                    return false;
                }

                var written = Native.splice(pipeRead, 0, destination, 0, (nuint)pending, Native.SPLICE_F_MOVE | Native.SPLICE_F_NONBLOCK);
                if (written > 0)
                {
                    pending -= written;
                    continue;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (written < 0 && errno == Native.EAGAIN)
                {
                    Wait(destination, Native.POLLOUT);
                }
                else if (written < 0 && errno == Native.EINTR)
                {
                    continue;
                }
                else
                {
                    return false;
                }
            }

            return true;
        }

        private unsafe void Wait(int fd, short events)
        {
            var poll = new Native.PollFd { Fd = fd, Events = events };
            Native.poll(&poll, 1, PollMilliseconds);
        }
    }

    private static unsafe partial class Native
    {
        public const int O_NONBLOCK = 0x800;
        public const int O_CLOEXEC = 0x80000;
        public const uint SPLICE_F_MOVE = 1;
        public const uint SPLICE_F_NONBLOCK = 2;
        public const short POLLIN = 1;
        public const short POLLOUT = 4;
        public const int SHUT_WR = 1;
        public const int EINTR = 4;
        public const int EAGAIN = 11;
        public const int EINVAL = 22;
        public const int ENOSYS = 38;

        [StructLayout(LayoutKind.Sequential)]
        public struct PollFd
        {
            public int Fd;
            public short Events;
            public short Revents;
        }

        [LibraryImport("libc", SetLastError = true)]
        public static partial nint splice(int fdIn, nint offIn, int fdOut, nint offOut, nuint length, uint flags);

        [LibraryImport("libc", SetLastError = true)]
        public static partial int pipe2(int* fds, int flags);

        [LibraryImport("libc", SetLastError = true)]
        public static partial int poll(PollFd* fds, nuint count, int timeout);

        [LibraryImport("libc", SetLastError = true)]
        public static partial int shutdown(int fd, int how);

        [LibraryImport("libc", SetLastError = true)]
        public static partial int close(int fd);

        [LibraryImport("libc", SetLastError = true)]
        public static partial nint read(int fd, byte* buffer, nuint count);

        [LibraryImport("libc", SetLastError = true)]
        public static partial nint write(int fd, byte* buffer, nuint count);
    }
}
