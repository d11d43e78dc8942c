namespace StreamSpace.Api.Features.Agents;

public static class AgentIdRules
{
    /// <summary>Agent ids become Kubernetes label values and log fields, so they stay DNS-label-like.</summary>
    public const string Pattern = "^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$";
}

public static class AgentStatus
{
    public const string Online = "online";
    public const string Offline = "offline";
}
