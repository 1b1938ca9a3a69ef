-- Version 1 of the PostgreSQL schema of the conference server.
-- Each vN.sql upgrades a database at version N-1 (v1: an empty one) to N,
-- and ends by recording N in schema_version.

CREATE TABLE schema_version (
    version INTEGER NOT NULL
);
INSERT INTO schema_version (version) VALUES (0);

CREATE TABLE conferences (
    uri       TEXT             NOT NULL PRIMARY KEY,
    uid       TEXT             NOT NULL UNIQUE,
    organizer TEXT             NOT NULL,
    calendar  BYTEA            NOT NULL,
    sequence  INTEGER          NOT NULL,
    state     TEXT             NOT NULL,
    settings  TEXT             NOT NULL,
    version   INTEGER          NOT NULL,
    created   DOUBLE PRECISION NOT NULL,
    updated   DOUBLE PRECISION NOT NULL
);
CREATE INDEX conferences_organizer ON conferences (organizer);

CREATE TABLE calendar_entries (
    owner    TEXT             NOT NULL,
    uid      TEXT             NOT NULL,
    calendar BYTEA            NOT NULL,
    source   TEXT             NOT NULL,
    updated  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (owner, uid)
);

CREATE TABLE registrations (
    aor        TEXT             NOT NULL,
    contact    TEXT             NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    q          DOUBLE PRECISION,
    call_id    TEXT             NOT NULL,
    cseq       BIGINT           NOT NULL,
    PRIMARY KEY (aor, contact)
);
CREATE INDEX registrations_expiry ON registrations (expires_at);

CREATE TABLE bindings (
    owner        TEXT             NOT NULL,
    disposition  TEXT             NOT NULL,
    uri          TEXT             NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL,
    etag         TEXT             NOT NULL,
    one_time     BOOLEAN          NOT NULL,
    issuer       TEXT             NOT NULL,
    public       BOOLEAN          NOT NULL,
    data         BYTEA,
    content_type TEXT,
    created      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (owner, disposition, uri)
);
CREATE INDEX bindings_expiry ON bindings (expires_at);

CREATE TABLE binding_owners (
    owner        TEXT NOT NULL PRIMARY KEY,
    dispositions TEXT
);

UPDATE schema_version SET version = 1;
