using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.CommandLine;

/// <summary>
/// <c>./streamspace</c>'s command line: each command answers <c>--help</c> and <c>-h</c> with its own usage and starts
/// nothing; a wrong command line gets one line and exit code 2. The script runs from a copy in an empty folder (it works
/// in its own folder), so anything it started there (a build, <c>.state/</c>) would show.
/// </summary>
public sealed class StreamspaceScriptTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("streamspace-script-").FullName;
    private readonly string script;

    public StreamspaceScriptTests()
    {
        script = Path.Combine(folder, "streamspace");
        File.Copy(Path.Combine(Repository.Root, "streamspace"), script);
    }

    public void Dispose() => Directory.Delete(folder, recursive: true);

    [Theory]
    [InlineData("up", "--replicas")]
    [InlineData("test", "DOTNET-TEST-ARGS")]
    [InlineData("doctor", "--agent")]
    [InlineData("bench", "--only SECTION")]
    public async Task Each_command_answers_help_with_its_own_usage_and_starts_nothing(string command, string option)
    {
        foreach (var help in new[] { "--help", "-h" })
        {
            // Also after other arguments, as people type it.
            foreach (var arguments in new[] { new[] { command, help }, new[] { command, "--quick", help } })
            {
                var result = await RunAsync(arguments);
                Assert.True(result.ExitCode == 0, $"{string.Join(' ', arguments)}: exit {result.ExitCode}: {result.StandardError}");
                Assert.StartsWith($"usage: ./streamspace {command}", result.StandardOutput, StringComparison.Ordinal);
                Assert.Contains(option, result.StandardOutput, StringComparison.Ordinal);
                Assert.Equal("", result.StandardError);
            }
        }

        Assert.Equal([script], Directory.GetFileSystemEntries(folder));
    }

    [Fact]
    public async Task Help_alone_lists_every_command()
    {
        var result = await RunAsync(["--help"]);
        Assert.Equal(0, result.ExitCode);
        Assert.StartsWith("usage: ./streamspace COMMAND", result.StandardOutput, StringComparison.Ordinal);
        foreach (var command in new[] { "up", "test", "doctor", "bench" })
        {
            Assert.Contains($"\n  {command} ", result.StandardOutput, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("up --bogus", "unknown option for up: --bogus")]
    [InlineData("up --replicas", "--replicas needs a number")]
    [InlineData("up --replicas two", "--replicas must be a whole number from 1 to 8")]
    [InlineData("up --replicas 9", "--replicas must be a whole number from 1 to 8")]
    [InlineData("doctor --fix", "unknown option for doctor: --fix")]
    [InlineData("frob", "unknown command: frob")]
    public async Task A_wrong_command_line_gets_one_line_and_exit_code_2_and_starts_nothing(string commandLine, string message)
    {
        var result = await RunAsync(commandLine.Split(' '));
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("", result.StandardOutput);
        var line = Assert.Single(result.StandardError.TrimEnd('\n').Split('\n'));
        Assert.Contains(message, line, StringComparison.Ordinal);
        Assert.Equal([script], Directory.GetFileSystemEntries(folder));
    }

    private Task<ProcessResult> RunAsync(string[] arguments) =>
        ProcessRunner.RunAsync("bash", [script, .. arguments], timeout: TimeSpan.FromSeconds(30));
}
