using System.Runtime.Versioning;

// The agent runs sessions with Linux processes (Xvnc, process groups) or on Kubernetes; it runs on Linux only.
[assembly: SupportedOSPlatform("linux")]
