// A real OpenID provider (oidc-provider, a certified implementation) for StreamSpace's sign-in tests.
// Usage: node provider.js CONFIG.json
//   CONFIG: { "port": 0, "client": { client_id, client_secret, redirect_uris, post_logout_redirect_uris },
//             "accounts": { "<sub>": { "preferred_username": …, "name": …, "email": …, "groups": [ … ] } } }
// Prints "listening <issuer>" once it serves. Its own login page (devInteractions) signs in any account of CONFIG by
// its sub, with any password; consent is granted at once, as a company's provider configured for the app would.
// Accounts are read from CONFIG at each sign-in, so a test can change a user's groups between two sign-ins.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const readConfig = () => JSON.parse(readFileSync(process.argv[2], 'utf8'));
const config = readConfig();
const server = createServer();
await new Promise((resolve) => server.listen(config.port ?? 0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...config.client,
  }],
  // PKCE for every client, confidential ones too.
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email'],
    groups: ['groups'],
  },
  // Put the scopes' claims in the ID token itself (as Keycloak's and Entra ID's group claims are): StreamSpace
  // reads the user from the ID token.
  conformIdTokenClaims: false,
  findAccount: async (_ctx, sub) => {
    const account = readConfig().accounts[sub];
    return account && { accountId: sub, claims: async () => ({ sub, ...account }) };
  },
  // Consent is the provider admin's business: grant every requested scope and claim at once.
  loadExistingGrant: async (ctx) => {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope(ctx.oidc.requestParamScopes ? [...ctx.oidc.requestParamScopes].join(' ') : 'openid');
    grant.addOIDCClaims(['name', 'preferred_username', 'email', 'groups']);
    await grant.save();
    return grant;
  },
  features: {
    devInteractions: { enabled: true },
    // Not every provider offers pushed authorization requests (Entra ID does not); without them the authorization
    // request travels in the browser's URL, where a test can tamper with it as an attacker would.
    pushedAuthorizationRequests: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      // The default page loads a web font; this machine has no network.
      logoutSource: async (ctx, form) => {
        ctx.body = `<!DOCTYPE html><title>Sign out</title>${form}
          <button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>`;
      },
      postLogoutSuccessSource: async (ctx) => { ctx.body = '<!DOCTYPE html><title>Signed out</title><p>Signed out.</p>'; },
    },
  },
  cookies: { keys: ['streamspace-test-provider-cookie-key'] },
});
provider.proxy = false;
server.on('request', provider.callback());
console.log(`listening ${issuer}`);
