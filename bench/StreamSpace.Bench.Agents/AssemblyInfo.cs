using System.Runtime.Versioning;

// References the agent, which runs on Linux only.
[assembly: SupportedOSPlatform("linux")]
