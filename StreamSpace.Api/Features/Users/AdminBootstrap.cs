using StreamSpace.Api.Features.Audit;
using StreamSpace.Api.Infrastructure.Database;
using StreamSpace.Settings;

namespace StreamSpace.Api.Features.Users;

/// <summary>
/// Makes <c>ADMIN_PASSWORD</c> the single source of truth for the bootstrap admin: at every start the account
/// is created, or its password, role and enabled flag are brought back in line with the secret (and audited).
/// A password changed in the database (or an account disabled) therefore never locks the operator out for longer than a
/// restart: the secret's credentials always sign in after one.
/// </summary>
public sealed class AdminBootstrap(ApiSettings settings, UserStore users, ILogger<AdminBootstrap> logger) : IAfterMigration
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var username = settings.AdminUsername;
        if (string.IsNullOrEmpty(settings.AdminPassword))
        {
            if (!await users.AnyActiveAdminAsync(cancellationToken))
            {
                throw new InvalidSettingException("ADMIN_PASSWORD",
                    $"is not set and the database has no admin: set it so the API can create the '{username}' account.");
            }

            return;
        }

        var admin = await users.FindByUsernameAsync(username, cancellationToken);
        if (admin is null)
        {
            var (result, _) = await users.CreateAsync(Actor.System, username, settings.AdminPassword, UserRoles.Admin, cancellationToken);
            if (result == UserChange.Done)
            {
                logger.LogInformation("Created the admin account {Username} from ADMIN_PASSWORD", username);
                return;
            }

            // Another API replica created it a moment ago; fall through and check it matches.
            admin = await users.FindByUsernameAsync(username, cancellationToken)
                ?? throw new InvalidOperationException($"The admin account {username} vanished while it was being created.");
        }

        var passwordMatches = users.VerifyPassword(admin, settings.AdminPassword);
        if (passwordMatches && admin is { Role: UserRoles.Admin, Disabled: false })
        {
            return;
        }

        await users.UpdateAsync(Actor.System, admin.Id, UserRoles.Admin, disabled: false,
            newPassword: passwordMatches ? null : settings.AdminPassword, cancellationToken);
        logger.LogInformation("Synced the admin account {Username} with ADMIN_PASSWORD (password {Changed})",
            username, passwordMatches ? "unchanged" : "updated");
    }
}
