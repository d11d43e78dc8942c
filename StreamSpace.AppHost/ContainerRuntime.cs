using System.Diagnostics;

namespace StreamSpace.AppHost;

/// <summary>Finds out whether a container runtime can actually run containers, not just whether its client is installed.</summary>
internal static class ContainerRuntime
{
    public static bool IsHealthy(string runtime)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(runtime, ["info", "--format", "{{.ServerVersion}}"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            });
            if (process is null)
            {
                return false;
            }

            if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                process.Kill(entireProcessTree: true);
                return false;
            }

            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // The client is not installed at all.
            return false;
        }
    }
}
