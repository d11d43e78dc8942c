namespace StreamSpace.Tests.Infrastructure;

/// <summary>Paths inside the repository, for tests that run the built programs as a user would.</summary>
public static class Repository
{
    public static string Root { get; } = FindRoot();

    /// <summary>The same configuration (Debug or Release) the tests were built with.</summary>
    public static string Configuration { get; } = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;

    public static string BuiltAssembly(string project) =>
        Path.Combine(Root, project, "bin", Configuration, "net10.0", project + ".dll");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "StreamSpace.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("The tests run outside the StreamSpace repository.");
    }
}
