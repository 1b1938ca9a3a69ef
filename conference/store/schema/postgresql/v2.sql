-- Version 2: each conference records its owner, the organizer who created
-- it (whose its bindings are, docs/bind.rst); existing conferences are
-- their current organizer's.

ALTER TABLE conferences ADD COLUMN owner TEXT NOT NULL DEFAULT '';
UPDATE conferences SET owner = organizer;

UPDATE schema_version SET version = 2;
