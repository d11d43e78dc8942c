-- Groups (issue 19): who may launch which templates, and each group's quotas. NULL in a quota means the group does not
-- set it; a user in several groups gets the most generous value the groups set, and the global setting otherwise.
CREATE TABLE groups (
    id                 uuid PRIMARY KEY,
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    description        text NOT NULL DEFAULT '',
    -- Whether the identity provider's group claim decides its members (SetProviderGroupsAsync); hand-made members stay.
    provider_managed   boolean NOT NULL DEFAULT false,
    max_sessions       integer CHECK (max_sessions >= 0),
    max_cpu_millicores integer CHECK (max_cpu_millicores > 0),
    max_memory_mib     integer CHECK (max_memory_mib > 0),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
-- Names are unique whatever their case, as the provider's claim is matched without it.
CREATE UNIQUE INDEX groups_name_key ON groups (lower(name));

CREATE TABLE group_members (
    group_id   uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source     text NOT NULL CHECK (source IN ('manual', 'provider')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_idx ON group_members (user_id);

-- A template with no rows here is open to everyone; with rows, to those groups' members (and admins).
CREATE TABLE template_groups (
    template   text NOT NULL REFERENCES templates (name) ON DELETE CASCADE,
    group_id   uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (template, group_id)
);
CREATE INDEX template_groups_group_idx ON template_groups (group_id);
