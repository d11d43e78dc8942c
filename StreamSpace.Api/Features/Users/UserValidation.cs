
namespace StreamSpace.Api.Features.Users;

/// <summary>The rules for usernames and passwords, shared by every endpoint that takes one.</summary>
public static class UserValidation
{
    public static IRuleBuilderOptions<T, string> ValidUsername<T>(this IRuleBuilder<T, string> rule) =>
        rule.NotEmpty()
            .MaximumLength(UsernameRules.MaximumLength)
            .Matches(UsernameRules.Pattern).WithMessage("Usernames use letters, digits, '.', '_', '@' and '-', and start with a letter or digit.");

    public static IRuleBuilderOptions<T, string?> ValidPassword<T>(this IRuleBuilder<T, string?> rule) =>
        rule.NotEmpty()
            .MinimumLength(PasswordRules.MinimumLength)
            .MaximumLength(PasswordRules.MaximumLength);

    public static IRuleBuilderOptions<T, string?> ValidRole<T>(this IRuleBuilder<T, string?> rule) =>
        rule.Must(UserRoles.IsValid).WithMessage("Role must be 'admin' or 'user'.");
}
