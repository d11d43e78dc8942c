using System.Runtime.Versioning;

// The benchmarks drive Linux processes (PostgreSQL, Xvnc, the agent) and read /proc.
[assembly: SupportedOSPlatform("linux")]
