using System.Runtime.Versioning;

// The tests drive Linux processes (PostgreSQL, Xvnc, the agent), so they run on Linux only.
[assembly: SupportedOSPlatform("linux")]
