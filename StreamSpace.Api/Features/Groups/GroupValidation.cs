using FastEndpoints;

namespace StreamSpace.Api.Features.Groups;

/// <summary>The rules for a group's fields, shared by creating, renaming and setting quotas.</summary>
public sealed class GroupQuotasValidator : Validator<GroupQuotas>
{
    public const int MostSessions = 10_000;

    public GroupQuotasValidator()
    {
        RuleFor(x => x.MaxSessions).InclusiveBetween(0, MostSessions).When(x => x.MaxSessions is not null);
        RuleFor(x => x.MaxCpuMillicores).InclusiveBetween(1, 1_000_000).When(x => x.MaxCpuMillicores is not null)
            .WithMessage("max_cpu_millicores must be 1 to 1000000 (1000 is one core), or null to set none.");
        RuleFor(x => x.MaxMemoryMib).InclusiveBetween(1, 100_000_000).When(x => x.MaxMemoryMib is not null)
            .WithMessage("max_memory_mib must be 1 to 100000000, or null to set none.");
    }
}

public sealed class GroupRequestValidator : Validator<GroupRequest>
{
    public const int MaximumNameLength = 128;

    public GroupRequestValidator()
    {
        // Names are matched against an identity provider's group claim, which may hold paths ("/eng/ops") or ids, so
        // any printable text is allowed; only what would read differently than it compares is refused.
        RuleFor(x => x.Name).NotEmpty().MaximumLength(MaximumNameLength)
            .Must(n => n is null || (n.Trim() == n && !n.Any(char.IsControl)))
            .WithMessage("name must not start or end with spaces or hold control characters.");
        RuleFor(x => x.Description).MaximumLength(1000);
        RuleFor(x => x.Quotas!).SetValidator(new GroupQuotasValidator()).When(x => x.Quotas is not null);
    }
}

public sealed class AddGroupMemberValidator : Validator<AddGroupMemberRequest>
{
    public AddGroupMemberValidator() => RuleFor(x => x.Username).NotEmpty();
}
