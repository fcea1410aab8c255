-- 0005_directory: users and groups provisioned by identity directories over
-- SCIM 2.0 (package identity, CONTRACT.md section 6). User rows are never
-- deleted: a SCIM DELETE leaves a tombstone (deleted_at set, inactive, no keys and no
-- groups), so history keeps attributing sessions, commands and approvals to
-- the name, and a user re-created with the same externalId is the same row.
-- A deleted group's row goes; its history is in the audit chain
-- (identity.group.* events). Times are RFC 3339 UTC text of fixed width, as
-- in 0001_init.

CREATE TABLE directory_users (
    id           TEXT    PRIMARY KEY,            -- SCIM id, random, assigned by Warden
    directory    TEXT    NOT NULL,               -- identity.directories[].name
    external_id  TEXT,                           -- the IdP's own id, when it sends one
    user_name    TEXT    NOT NULL,               -- as sent, e.g. dana@contoso.com
    user_key     TEXT    NOT NULL,               -- lower(user_name): unique case-insensitively
    display_name TEXT    NOT NULL DEFAULT '',
    emails       TEXT    NOT NULL DEFAULT '[]',  -- JSON [{"value","type","primary"}]
    active       INTEGER NOT NULL CHECK (active IN (0, 1)),
    ssh_keys     TEXT    NOT NULL DEFAULT '[]',  -- JSON array of authorized_keys lines
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL,
    deleted_at   TEXT,
    CHECK (deleted_at IS NULL OR active = 0)
);
-- A name belongs to one live user; a tombstone gives it up.
CREATE UNIQUE INDEX directory_users_name ON directory_users (user_key) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX directory_users_external ON directory_users (directory, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE directory_groups (
    id           TEXT PRIMARY KEY,
    directory    TEXT NOT NULL,
    external_id  TEXT,
    display_name TEXT NOT NULL,                  -- equal to a YAML group's name: supplies its members
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX directory_groups_name ON directory_groups (directory, display_name);

CREATE TABLE directory_members (
    group_id TEXT NOT NULL REFERENCES directory_groups (id),
    user_id  TEXT NOT NULL REFERENCES directory_users (id),
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX directory_members_user ON directory_members (user_id);
