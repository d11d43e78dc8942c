using StreamSpace.Settings;

namespace StreamSpace.Tests.Infrastructure;

/// <summary>Runs a built program with one setting removed or changed, the way an operator meets a misconfiguration.</summary>
public static class StartupErrors
{
    public static async Task<ProcessResult> RunWithSettingAsync(string project, IReadOnlyDictionary<string, string> valid, string setting, string? value)
    {
        var environment = new Dictionary<string, string>(valid);
        if (value is null)
        {
            environment.Remove(setting);
        }
        else
        {
            environment[setting] = value;
        }

        return await ProcessRunner.RunAsync("dotnet", [Repository.BuiltAssembly(project)], environment);
    }

    /// <summary>Asserts the program stopped with the settings exit code and exactly one line, starting with the expected text.</summary>
    public static void AssertOneLine(ProcessResult result, string expected)
    {
        Assert.Equal(StartupGuard.InvalidSettingExitCode, result.ExitCode);
        var line = Assert.Single(result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"error: {expected}", line);
    }
}
