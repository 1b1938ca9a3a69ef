-- Version 3 of the SQLite schema: a conference's calendar entries refer to
-- the conference (one stored copy of the event, not one per attendee).
-- An entry with a conference stores an empty calendar
-- and reads the conference's; deleting the conference deletes them.
-- Existing copies of a conference's primary UID become references; others
-- keep their copy.

ALTER TABLE calendar_entries
    ADD COLUMN conference TEXT REFERENCES conferences (uri) ON DELETE CASCADE;
CREATE INDEX calendar_entries_conference ON calendar_entries (conference);

UPDATE calendar_entries
SET conference = (SELECT c.uri FROM conferences c WHERE c.uid = calendar_entries.uid),
    calendar = X''
WHERE source = 'conference'
  AND EXISTS (SELECT 1 FROM conferences c WHERE c.uid = calendar_entries.uid);

UPDATE schema_version SET version = 3;
