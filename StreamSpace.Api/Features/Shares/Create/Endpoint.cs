using FastEndpoints;
using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Features.Auth;
using StreamSpace.Api.Features.Sessions;
using StreamSpace.Api.Features.Users;
using StreamSpace.Api.Infrastructure;
using StreamSpace.Contracts;

namespace StreamSpace.Api.Features.Shares.Create;

public sealed class CreateShareValidator : Validator<CreateShareRequest>
{
    public const int MaxMinutes = 7 * 24 * 60;
    public const int MaxUsers = 100;

    public CreateShareValidator()
    {
        RuleFor(x => x.Mode).Must(mode => ShareModes.All.Contains(mode!)).When(x => x.Mode is not null)
            .WithMessage("mode must be view_only or interactive.");
        RuleFor(x => x.ExpiresInMinutes).InclusiveBetween(1, MaxMinutes).When(x => x.ExpiresInMinutes is not null)
            .WithMessage($"expires_in_minutes must be from 1 to {MaxMinutes} (7 days).");
        RuleFor(x => x.Users).Must(users => users!.Count <= MaxUsers).When(x => x.Users is not null)
            .WithMessage($"A share names at most {MaxUsers} users.");
        // An empty list is not "anyone": leaving users out is.
        RuleFor(x => x.Users).Must(users => users!.Count > 0).When(x => x.Users is not null)
            .WithMessage("users names at least one user; leave it out to share with anyone signed in who has the link.");
        RuleForEach(x => x.Users).Must(username => !string.IsNullOrWhiteSpace(username) && username.Length <= 64)
            .WithMessage("Each of users is a username.");
    }
}

/// <summary>POST /api/v1/sessions/{id}/shares: the owner (or an admin) shares a running session; the answer carries the link.</summary>
public sealed class CreateShareEndpoint(SessionStore sessions, ShareStore shares, ShareAccess access, IUserAccounts users) : Endpoint<CreateShareRequest, ShareResponse>
{
    public static readonly TimeSpan DefaultLifetime = TimeSpan.FromHours(1);

    public override void Configure()
    {
        Post("sessions/{id}/shares");
        Summary(s => s.Summary = "Shares a running session, view-only (default) or interactive, for a time (default 60 minutes, at most 7 days), "
            + "with any signed-in user who has the link or only the named users (owner, admin).");
    }

    public override async Task HandleAsync(CreateShareRequest request, CancellationToken cancellationToken)
    {
        var id = Route<string>("id")!;
        if (await sessions.GetAsync(id, User.RequiredUserId(), User.IsAdmin(), cancellationToken) is not { } session)
        {
            await Send.ResultAsync(ApiProblem.NotFound($"No session {id}."));
            return;
        }

        if (access.SwitchedOff(session, await access.TemplateAsync(session, cancellationToken)) is { } off)
        {
            await Send.ResultAsync(off);
            return;
        }

        if (session.State != SessionState.Running)
        {
            await Send.ResultAsync(ApiProblem.Conflict($"The session is {session.State.ToName()}; only a running session can be shared."));
            return;
        }

        var mode = request.Mode ?? ShareModes.ViewOnly;
        if (await access.ViewOnlyRefusalAsync(session, mode == ShareModes.ViewOnly, cancellationToken) is { } tooOld)
        {
            await Send.ResultAsync(tooOld);
            return;
        }

        List<(Guid, string)>? named = null;
        if (request.Users is { Count: > 0 })
        {
            named = [];
            foreach (var username in request.Users.Select(u => u.Trim()).Distinct(StringComparer.OrdinalIgnoreCase))
            {
                if (await users.FindByUsernameAsync(username, cancellationToken) is not { Disabled: false } user)
                {
                    await Send.ResultAsync(ApiProblem.BadRequest($"There is no user '{username}'."));
                    return;
                }

                named.Add((user.Id, user.Username));
            }
        }

        var lifetime = request.ExpiresInMinutes is { } minutes ? TimeSpan.FromMinutes(minutes) : DefaultLifetime;
        var share = await shares.CreateAsync(Actor.From(User), session, mode, lifetime, named, cancellationToken);
        await Send.ResultAsync(TypedResults.Created(share.ToResponse().Url, share.ToResponse()));
    }
}
