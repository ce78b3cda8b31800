-- Bytes stored per owner, for the storage quota (FILES_QUOTA_BYTES).
--
-- Kept by triggers on files.files, in the transaction of every statement that
-- inserts, updates or deletes rows, so it always equals the owner's sum of
-- sizes, whichever code (or version of it, during a rolling deploy) changed
-- them. An upload locks its owner's row before inserting, so concurrent uploads
-- are counted one after the other and cannot together pass the quota.
CREATE TABLE files.usage (
    owner_id   uuid   PRIMARY KEY,
    used_bytes bigint NOT NULL,
    CONSTRAINT usage_used_bytes_nonnegative CHECK (used_bytes >= 0)
);

-- One function for the three triggers: `added` and `removed` are the statement's
-- transition tables (an UPDATE has both). A row that reaches 0 goes.
CREATE FUNCTION files.count_usage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO files.usage AS u (owner_id, used_bytes)
        SELECT owner_id, sum(size) FROM added GROUP BY owner_id
        ON CONFLICT (owner_id) DO UPDATE SET used_bytes = u.used_bytes + EXCLUDED.used_bytes;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE files.usage AS u SET used_bytes = u.used_bytes - r.bytes
        FROM (SELECT owner_id, sum(size) AS bytes FROM removed GROUP BY owner_id) AS r
        WHERE u.owner_id = r.owner_id;
        DELETE FROM files.usage WHERE used_bytes = 0 AND owner_id IN (SELECT owner_id FROM removed);
    END IF;
    RETURN NULL;
END
$$;

-- No file row changes between the backfill and the triggers taking over.
LOCK TABLE files.files IN SHARE ROW EXCLUSIVE MODE;

CREATE TRIGGER files_usage_insert AFTER INSERT ON files.files
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION files.count_usage();
CREATE TRIGGER files_usage_update AFTER UPDATE ON files.files
    REFERENCING OLD TABLE AS removed NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION files.count_usage();
CREATE TRIGGER files_usage_delete AFTER DELETE ON files.files
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION files.count_usage();

-- Files stored before this migration count.
INSERT INTO files.usage (owner_id, used_bytes)
SELECT owner_id, sum(size) FROM files.files GROUP BY owner_id;
