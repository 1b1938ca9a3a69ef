-- Version 1 of the SQLite schema of the conference server.
-- Each vN.sql upgrades a database at version N-1 (v1: an empty one) to N,
-- and ends by recording N in schema_version.

CREATE TABLE schema_version (
    version INTEGER NOT NULL
);
INSERT INTO schema_version (version) VALUES (0);

CREATE TABLE conferences (
    uri       TEXT    NOT NULL PRIMARY KEY,
    uid       TEXT    NOT NULL UNIQUE,
    organizer TEXT    NOT NULL,
    calendar  BLOB    NOT NULL,
    sequence  INTEGER NOT NULL,
    state     TEXT    NOT NULL,
    settings  TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    created   REAL    NOT NULL,
    updated   REAL    NOT NULL
);
CREATE INDEX conferences_organizer ON conferences (organizer);

CREATE TABLE calendar_entries (
    owner    TEXT NOT NULL,
    uid      TEXT NOT NULL,
    calendar BLOB NOT NULL,
    source   TEXT NOT NULL,
    updated  REAL NOT NULL,
    PRIMARY KEY (owner, uid)
) WITHOUT ROWID;

CREATE TABLE registrations (
    aor        TEXT    NOT NULL,
    contact    TEXT    NOT NULL,
    expires_at REAL    NOT NULL,
    q          REAL,
    call_id    TEXT    NOT NULL,
    cseq       INTEGER NOT NULL,
    PRIMARY KEY (aor, contact)
) WITHOUT ROWID;
CREATE INDEX registrations_expiry ON registrations (expires_at);

CREATE TABLE bindings (
    owner        TEXT    NOT NULL,
    disposition  TEXT    NOT NULL,
    uri          TEXT    NOT NULL,
    expires_at   REAL    NOT NULL,
    etag         TEXT    NOT NULL,
    one_time     INTEGER NOT NULL,
    issuer       TEXT    NOT NULL,
    public       INTEGER NOT NULL,
    data         BLOB,
    content_type TEXT,
    created      REAL    NOT NULL,
    PRIMARY KEY (owner, disposition, uri)
) WITHOUT ROWID;
CREATE INDEX bindings_expiry ON bindings (expires_at);

CREATE TABLE binding_owners (
    owner        TEXT NOT NULL PRIMARY KEY,
    dispositions TEXT
) WITHOUT ROWID;

UPDATE schema_version SET version = 1;
