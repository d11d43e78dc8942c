using k8s.Models;

namespace StreamSpace.Tests.Chart;

/// <summary>A pod as NetworkPolicies see it: its namespace and labels.</summary>
public sealed record PodIdentity(string Name, string Namespace, IDictionary<string, string> Labels)
{
    public override string ToString() => $"{Name} ({Namespace})";
}

/// <summary>
/// Evaluates ingress NetworkPolicies the way the API server documents them, for the subset a chart uses:
/// pod and namespace selectors (matchLabels and matchExpressions) and numeric TCP ports. Namespaces carry only
/// their automatic <c>kubernetes.io/metadata.name</c> label. Egress is not modelled: the chart sets no egress rules.
/// </summary>
public static class NetworkPolicies
{
    public static bool Allows(IEnumerable<V1NetworkPolicy> policies, string releaseNamespace, PodIdentity source, PodIdentity target, int port)
    {
        var selecting = policies
            .Where(p => (p.Metadata.NamespaceProperty ?? releaseNamespace) == target.Namespace)
            .Where(p => p.Spec.PolicyTypes is null || p.Spec.PolicyTypes.Contains("Ingress"))
            .Where(p => Matches(p.Spec.PodSelector, target.Labels))
            .ToList();

        // A pod that no policy selects is not isolated: everything reaches it.
        if (selecting.Count == 0)
        {
            return true;
        }

        return selecting.Any(policy => (policy.Spec.Ingress ?? []).Any(rule =>
            AdmitsPeer(rule.FromProperty, policy.Metadata.NamespaceProperty ?? releaseNamespace, source) &&
            AdmitsPort(rule.Ports, port)));
    }

    private static bool AdmitsPeer(IList<V1NetworkPolicyPeer>? peers, string policyNamespace, PodIdentity source)
    {
        if (peers is null || peers.Count == 0)
        {
            return true;
        }

        return peers.Any(peer =>
        {
            if (peer.IpBlock is not null)
            {
                return false;
            }

            var namespaceMatches = peer.NamespaceSelector is null
                ? source.Namespace == policyNamespace
                : Matches(peer.NamespaceSelector, new Dictionary<string, string> { ["kubernetes.io/metadata.name"] = source.Namespace });
            return namespaceMatches && (peer.PodSelector is null || Matches(peer.PodSelector, source.Labels));
        });
    }

    private static bool AdmitsPort(IList<V1NetworkPolicyPort>? ports, int port)
    {
        if (ports is null || ports.Count == 0)
        {
            return true;
        }

        return ports.Any(p =>
        {
            if ((p.Protocol ?? "TCP") != "TCP")
            {
                return false;
            }

            if (p.Port is null)
            {
                return true;
            }

            var first = int.TryParse(p.Port.Value, out var number)
                ? number
                : throw new Xunit.Sdk.XunitException($"named NetworkPolicy port '{p.Port.Value}' is not modelled; use numbers");
            return port >= first && port <= (p.EndPort ?? first);
        });
    }

    public static bool Matches(V1LabelSelector? selector, IDictionary<string, string> labels)
    {
        if (selector is null)
        {
            return true;
        }

        var byLabels = (selector.MatchLabels ?? new Dictionary<string, string>())
            .All(l => labels.TryGetValue(l.Key, out var v) && v == l.Value);
        var byExpressions = (selector.MatchExpressions ?? []).All(e => e.OperatorProperty switch
        {
            "In" => labels.TryGetValue(e.Key, out var v) && e.Values.Contains(v),
            "NotIn" => !labels.TryGetValue(e.Key, out var v) || !e.Values.Contains(v),
            "Exists" => labels.ContainsKey(e.Key),
            "DoesNotExist" => !labels.ContainsKey(e.Key),
            _ => throw new Xunit.Sdk.XunitException($"unknown selector operator {e.OperatorProperty}"),
        });
        return byLabels && byExpressions;
    }
}
