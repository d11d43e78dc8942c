using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using StreamSpace.Contracts.Api;
using StreamSpace.Tests.Api.Features.Groups;
using StreamSpace.Tests.Infrastructure;

namespace StreamSpace.Tests.Api.Features.Auth;

/// <summary>The API against a real OpenID provider, with no web UI: it trusts an ID token only as far as it checks it itself.</summary>
public sealed class OidcTokenExchangeFixture : IAsyncLifetime
{
    public OidcProvider Provider { get; private set; } = null!;

    public ApiFactory Api { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Provider = await OidcProvider.StartAsync(new Uri("http://127.0.0.1:9/"), new Dictionary<string, OidcAccount>());
        Api = new ApiFactory(await SharedPostgres.CreateDatabaseAsync(), new Dictionary<string, string?>
        {
            ["OIDC_ISSUER"] = Provider.IssuerText,
            ["OIDC_CLIENT_ID"] = OidcProvider.ClientId,
            ["OIDC_ADMIN_GROUPS"] = "admins",
        }).Start();
    }

    public async Task DisposeAsync()
    {
        if (Api is not null)
        {
            await Api.DisposeAsync();
        }

        if (Provider is not null)
        {
            await Provider.DisposeAsync();
        }
    }
}

public sealed class OidcTokenExchangeTests(OidcTokenExchangeFixture fixture) : IClassFixture<OidcTokenExchangeFixture>
{
    [Fact]
    public async Task An_id_token_signs_in_once_and_its_api_token_works_but_the_same_id_token_is_refused_the_second_time()
    {
        var username = "ivy" + Guid.NewGuid().ToString("N")[..6];
        await fixture.Provider.SetAccountAsync("sub-" + username, new(username, Groups: ["admins"]));
        var idToken = await fixture.Provider.IssueIdTokenAsync("sub-" + username, nonce: Guid.NewGuid().ToString("N"));
        using var client = fixture.Api.CreateClient();

        var first = await client.PostAsJsonAsync("/api/v1/auth/oidc", new { id_token = idToken });
        var login = await first.AssertJsonAsync(HttpStatusCode.OK);
        Assert.Equal((username, UserRoles.Admin), (login.GetProperty("user").GetProperty("username").GetString(), login.GetProperty("user").GetProperty("role").GetString()));
        using var signedIn = fixture.Api.CreateClient();
        signedIn.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", login.GetProperty("token").GetString());
        var me = await signedIn.GetFromJsonAsync<UserResponse>("/api/v1/auth/me", ApiJson.Options);
        Assert.Equal(UserSources.Oidc, me!.Source);

        var again = await client.PostAsJsonAsync("/api/v1/auth/oidc", new { id_token = idToken });
        Assert.Equal(HttpStatusCode.Unauthorized, again.StatusCode);
        Assert.Contains("already used", await again.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Each_sign_in_makes_the_user_a_member_of_the_provider_managed_groups_its_claim_names_and_of_no_other_through_the_provider()
    {
        var username = "gus" + Guid.NewGuid().ToString("N")[..6];
        using var admin = await fixture.Api.AdminClientAsync();
        var engineering = await admin.CreateGroupAsync(GroupClient.UniqueName("engineering"), providerManaged: true);
        var unmanaged = await admin.CreateGroupAsync(GroupClient.UniqueName("unmanaged"));

        await SignInAsync(username, [engineering.Name, unmanaged.Name, "not-a-group"]);
        Assert.Equal([(username, GroupMemberSources.Provider)], await MembersAsync(admin, engineering));
        Assert.Empty(await MembersAsync(admin, unmanaged));

        // The claim no longer names the group: the next sign-in takes the user out of it.
        await SignInAsync(username, []);
        Assert.Empty(await MembersAsync(admin, engineering));
    }

    private async Task SignInAsync(string username, string[] groups)
    {
        await fixture.Provider.SetAccountAsync("sub-" + username, new(username, Groups: groups));
        using var client = fixture.Api.CreateClient();
        var idToken = await fixture.Provider.IssueIdTokenAsync("sub-" + username, nonce: Guid.NewGuid().ToString("N"));
        await (await client.PostAsJsonAsync("/api/v1/auth/oidc", new { id_token = idToken })).AssertJsonAsync(HttpStatusCode.OK);
    }

    private static async Task<List<(string, string)>> MembersAsync(HttpClient admin, GroupResponse group) =>
        [.. (await (await admin.GetAsync($"/api/v1/admin/groups/{group.Id}")).AssertJsonAsync<GroupResponse>(HttpStatusCode.OK)).Members
            .Select(m => (m.Username, m.Source))];

    [Fact]
    public async Task The_health_report_shows_the_sign_in_mode_with_the_provider_and_its_keys()
    {
        using var admin = await fixture.Api.AdminClientAsync();
        var report = await (await admin.GetAsync("/api/v1/admin/diagnostics")).AssertJsonAsync<DiagnosticsReport>(HttpStatusCode.OK);

        var check = Assert.Single(report.Checks, c => c.Id == "auth.sign_in");
        Assert.Equal(CheckStatus.Ok, check.Status);
        Assert.StartsWith($"passwords and the OpenID provider {fixture.Provider.IssuerText} (client {OidcProvider.ClientId}): 1 signing key", check.Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_id_token_signed_with_another_key_is_refused_and_creates_no_user()
    {
        var username = "mallory" + Guid.NewGuid().ToString("N")[..6];
        // Everything right but the key: the issuer, the audience, a nonce, fresh. Only the provider's keys count.
        using var rsa = RSA.Create(2048);
        var forged = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = fixture.Provider.IssuerText,
            Audience = OidcProvider.ClientId,
            IssuedAt = DateTime.UtcNow,
            Expires = DateTime.UtcNow.AddMinutes(5),
            Claims = new Dictionary<string, object> { ["sub"] = "sub-" + username, ["nonce"] = "n", ["preferred_username"] = username, ["groups"] = new[] { "admins" } },
            SigningCredentials = new SigningCredentials(new RsaSecurityKey(rsa) { KeyId = "forged" }, SecurityAlgorithms.RsaSha256),
        });
        using var client = fixture.Api.CreateClient();

        var response = await client.PostAsJsonAsync("/api/v1/auth/oidc", new { id_token = forged });

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        using var admin = await fixture.Api.AdminClientAsync();
        var users = await admin.GetFromJsonAsync<List<UserResponse>>("/api/v1/users", ApiJson.Options);
        Assert.DoesNotContain(users!, u => u.Username == username);
    }

    [Fact]
    public async Task An_id_token_with_its_claims_changed_after_signing_is_refused()
    {
        var username = "trent" + Guid.NewGuid().ToString("N")[..6];
        await fixture.Provider.SetAccountAsync("sub-" + username, new(username, Groups: ["staff"]));
        var idToken = await fixture.Provider.IssueIdTokenAsync("sub-" + username, nonce: Guid.NewGuid().ToString("N"));
        // The payload rewritten to claim the admin group, the provider's signature kept.
        var parts = idToken.Split('.');
        var payload = Base64UrlEncoder.Decode(parts[1]).Replace("\"staff\"", "\"admins\"", StringComparison.Ordinal);
        var tampered = $"{parts[0]}.{Base64UrlEncoder.Encode(payload)}.{parts[2]}";
        using var client = fixture.Api.CreateClient();

        var response = await client.PostAsJsonAsync("/api/v1/auth/oidc", new { id_token = tampered });

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }
}
