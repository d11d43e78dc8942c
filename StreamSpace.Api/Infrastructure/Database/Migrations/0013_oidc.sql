-- Single sign-on with OpenID Connect (issue 19). A user signed in through a provider is linked to it by (issuer,
-- subject), never by username, so a provider cannot take over a local account that happens to share a name.
ALTER TABLE users
    ADD COLUMN oidc_issuer     text,
    ADD COLUMN oidc_subject    text,
    ADD COLUMN display_name    text,
    ADD COLUMN email           text,
    -- The provider's groups claim at the user's last sign-in; the groups feature maps them to StreamSpace groups.
    ADD COLUMN provider_groups text[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT users_oidc_link_whole CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL));
CREATE UNIQUE INDEX users_oidc_link_key ON users (oidc_issuer, oidc_subject) WHERE oidc_issuer IS NOT NULL;

-- The nonces of ID tokens already exchanged for a StreamSpace token: each ID token is exchanged once, so a copy
-- of one (a log, a browser history) cannot sign anyone in again. Rows outlive the tokens' freshness window only.
CREATE TABLE oidc_used_nonces (
    nonce_hash bytea PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
