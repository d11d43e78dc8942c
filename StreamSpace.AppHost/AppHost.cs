using StreamSpace.AppHost;

var builder = DistributedApplication.CreateBuilder(args);

var database = builder.AddStreamSpaceDatabase();

// Generated once, then kept in the AppHost's user secrets, so logins survive restarts.
var jwtSecret = builder.AddParameter("jwt-secret", new GenerateParameterDefault { MinLength = 48, Special = false }, secret: true, persist: true);
var adminPassword = builder.AddParameter("admin-password", new GenerateParameterDefault { MinLength = 20, Special = false }, secret: true, persist: true);
var agentKey = builder.AddParameter("agent-key", new GenerateParameterDefault { MinLength = 64, Special = false }, secret: true, persist: true);

const string localAgentId = "local-agent";

// How many API processes run behind Aspire's proxy on the API's port (`./streamspace up --replicas N`); 1 by default.
var apiReplicas = builder.Configuration["StreamSpace:ApiReplicas"] is { Length: > 0 } configuredReplicas
    ? int.TryParse(configuredReplicas, out var parsedReplicas) && parsedReplicas is >= 1 and <= 8
        ? parsedReplicas
        : throw new InvalidOperationException($"StreamSpace:ApiReplicas is '{configuredReplicas}'; use a whole number from 1 to 8.")
    : 1;

var api = builder.AddProject<Projects.StreamSpace_Api>("api")
    .WithReference(database)
    .WaitFor(database)
    .WithEnvironment("JWT_SECRET", jwtSecret)
    .WithEnvironment("ADMIN_USERNAME", "admin")
    .WithEnvironment("ADMIN_PASSWORD", adminPassword)
    // The local agent's credential is provisioned, not registered by hand; the key works for this agent id only.
    .WithEnvironment("PROVISIONED_AGENT_ID", localAgentId)
    .WithEnvironment("PROVISIONED_AGENT_KEY", agentKey)
    // Agents' data connections dial each replica directly, on a port of its own (0: any free one) on loopback.
    .WithEnvironment("DATA_PORT", "0")
    .WithEnvironment("REPLICA_ADDRESS", "127.0.0.1")
    .WithReplicas(apiReplicas)
    .WithHttpHealthCheck("/health");

// The agent's data holds users' homes, which session accounts (other uids) enter, so it may need to live outside the
// private state folder: `./streamspace up` as root puts it in /var/lib/streamspace/agent.
var agentDataDirectory = builder.Configuration["StreamSpace:AgentDataDirectory"] is { Length: > 0 } configuredAgentData
    ? Path.GetFullPath(configuredAgentData)
    : Path.Combine(PostgresExtensions.StateDirectory(builder), "agent");

// How the local agent separates sessions: `accounts` (its default; one OS account per user) or `none` (every session
// runs as the agent's user; what `./streamspace up` sets when not run as root).
var localIsolation = builder.Configuration["StreamSpace:LocalIsolation"];
if (localIsolation is not (null or "" or "accounts" or "none"))
{
    throw new InvalidOperationException($"StreamSpace:LocalIsolation is '{localIsolation}'; use accounts or none.");
}

var agent = builder.AddProject<Projects.StreamSpace_Agent>("agent")
    .WithEnvironment("CONTROL_PLANE_URL", ReferenceExpression.Create($"{api.GetEndpoint("http")}/agent/ws"))
    .WithEnvironment("AGENT_ID", localAgentId)
    .WithEnvironment("AGENT_KEY", agentKey)
    .WithEnvironment("PLATFORM", "local")
    .WithEnvironment("AGENT_DATA_DIR", agentDataDirectory)
    // Healthy in the dashboard only while connected to the control plane.
    .WithHttpEndpoint(name: "health", env: "AGENT_HEALTH_PORT")
    .WithHttpHealthCheck("/health", endpointName: "health")
    .WaitFor(api);
if (!string.IsNullOrEmpty(localIsolation))
{
    agent.WithEnvironment("LOCAL_ISOLATION", localIsolation);
}

builder.AddStreamSpaceDiagnostics(api, adminPassword);

// The web keeps its Data Protection keys (which encrypt the auth cookie) in the API's database, in a table the API's
// migrations create, so signed-in users stay signed in across web restarts.
builder.AddProject<Projects.StreamSpace_Web>("web")
    .WithReference(database)
    .WithReference(api)
    .WaitFor(api)
    .WithExternalHttpEndpoints()
    // The browser opens the viewer's WebSocket on the API's port directly; the web relays no VNC.
    .WithEnvironment("VIEWER_VNC_PORT", api.GetEndpoint("http").Property(EndpointProperty.Port))
    .WithHttpHealthCheck("/health");

builder.Build().Run();
