namespace StreamSpace.Bench;

/// <summary>Where the repository and the built system under test are.</summary>
public static class BenchPaths
{
    /// <summary>The repository the bench runs in (docs/benchmarks.md is written there).</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>
    /// A project's Release build. STREAMSPACE_BENCH_SYSTEM_ROOT runs the API and agent of another checkout (e.g.
    /// `git archive` of an older commit, built in Release) under the same harness, for before-and-after figures.
    /// </summary>
    public static string Built(string project) =>
        Path.Combine(Environment.GetEnvironmentVariable("STREAMSPACE_BENCH_SYSTEM_ROOT") ?? Root, project, "bin", "Release", "net10.0", project + ".dll");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "StreamSpace.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Run the benchmarks inside the StreamSpace repository.");
    }
}
