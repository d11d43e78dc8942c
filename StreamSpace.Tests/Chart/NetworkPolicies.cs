using System.Net;
using k8s.Models;
using IPNetwork = System.Net.IPNetwork;

namespace StreamSpace.Tests.Chart;

/// <summary>A pod as NetworkPolicies see it: its namespace and labels.</summary>
public sealed record PodIdentity(string Name, string Namespace, IDictionary<string, string> Labels)
{
    public override string ToString() => $"{Name} ({Namespace})";
}

/// <summary>A connection's far end: an address, and the pod behind it when it is one.</summary>
public sealed record Destination(string Address, PodIdentity? Pod = null)
{
    public override string ToString() => Pod is null ? Address : $"{Pod} at {Address}";
}

/// <summary>
/// Evaluates NetworkPolicies the way the API server documents them, for the subset a chart uses:
/// pod and namespace selectors (matchLabels and matchExpressions), ipBlocks with exceptions, and numeric ports.
/// Namespaces carry only their automatic <c>kubernetes.io/metadata.name</c> label. For egress, an ipBlock is matched
/// against pods' addresses too; whether a CNI does that is up to it, so tests give pods addresses that the chart's
/// ipBlocks deny, and a pod is then reached only through a selector that admits it, as on any CNI.
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
            AdmitsPort(rule.Ports, port, "TCP")));
    }

    /// <summary>Whether <paramref name="source"/> may open a connection to <paramref name="destination"/>.</summary>
    public static bool AllowsEgress(IEnumerable<V1NetworkPolicy> policies, string releaseNamespace, PodIdentity source, Destination destination, int port,
        string protocol = "TCP")
    {
        var selecting = policies
            .Where(p => (p.Metadata.NamespaceProperty ?? releaseNamespace) == source.Namespace)
            .Where(p => p.Spec.PolicyTypes?.Contains("Egress") ?? p.Spec.Egress is not null)
            .Where(p => Matches(p.Spec.PodSelector, source.Labels))
            .ToList();

        // A pod that no egress policy selects may connect anywhere.
        if (selecting.Count == 0)
        {
            return true;
        }

        var address = IPAddress.Parse(destination.Address);
        return selecting.Any(policy => (policy.Spec.Egress ?? []).Any(rule =>
            AdmitsDestination(rule.To, policy.Metadata.NamespaceProperty ?? releaseNamespace, address, destination.Pod) &&
            AdmitsPort(rule.Ports, port, protocol)));
    }

    private static bool AdmitsDestination(IList<V1NetworkPolicyPeer>? peers, string policyNamespace, IPAddress address, PodIdentity? pod)
    {
        if (peers is null || peers.Count == 0)
        {
            return true;
        }

        return peers.Any(peer =>
        {
            if (peer.IpBlock is { } block)
            {
                return IPNetwork.Parse(block.Cidr).Contains(address) &&
                    !(block.Except ?? []).Any(e => IPNetwork.Parse(e).Contains(address));
            }

            if (pod is null)
            {
                return false;
            }

            var namespaceMatches = peer.NamespaceSelector is null
                ? pod.Namespace == policyNamespace
                : Matches(peer.NamespaceSelector, new Dictionary<string, string> { ["kubernetes.io/metadata.name"] = pod.Namespace });
            return namespaceMatches && (peer.PodSelector is null || Matches(peer.PodSelector, pod.Labels));
        });
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

    private static bool AdmitsPort(IList<V1NetworkPolicyPort>? ports, int port, string protocol)
    {
        if (ports is null || ports.Count == 0)
        {
            return true;
        }

        return ports.Any(p =>
        {
            if ((p.Protocol ?? "TCP") != protocol)
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
