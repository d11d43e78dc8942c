namespace StreamSpace.Settings;

/// <summary>
/// Runs a process's host and turns a missing or invalid setting into one line on stderr and exit code 2,
/// instead of a stack trace that buries the setting's name.
/// </summary>
public static class StartupGuard
{
    public const int InvalidSettingExitCode = 2;

    public static async Task<int> RunAsync(Func<Task> run)
    {
        try
        {
            await run();
            return Environment.ExitCode;
        }
        catch (Exception e) when (FindSettingError(e) is { } setting)
        {
            await Console.Error.WriteLineAsync($"error: {setting.Message}");
            return InvalidSettingExitCode;
        }
    }

    private static InvalidSettingException? FindSettingError(Exception? e) => e switch
    {
        InvalidSettingException setting => setting,
        AggregateException aggregate => aggregate.InnerExceptions.Select(FindSettingError).FirstOrDefault(x => x is not null),
        null => null,
        _ => FindSettingError(e.InnerException),
    };
}
