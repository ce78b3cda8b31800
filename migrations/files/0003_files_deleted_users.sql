-- Deletion is final. Once `user.deleted` has been applied, the user's id stays
-- here (written in the cascade's transaction) and no file can be recorded for
-- it again, by whatever code: a token that outlives its account buys nothing.
CREATE TABLE files.deleted_users (
    owner_id   uuid        PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);

-- The key of an owner's transaction-level advisory lock, which orders uploads
-- against the cascade: uploads take it shared, the cascade exclusive. Prefixed
-- with the schema, so the tasks service's lock on the same user (one database
-- in one-process mode) is another one.
CREATE FUNCTION files.owner_lock_key(owner uuid) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN hashtextextended('files:' || owner::text, 0);

-- Refuses to let `owner` gain rows once deleted. Why it cannot miss a cascade:
-- the lock is taken first and held until the caller's transaction ends, and the
-- check after it is a query of its own in a VOLATILE function, so at READ
-- COMMITTED (every writer here) it takes a fresh snapshot once the lock is
-- held. Either the upload holds the lock first, and the cascade waits for it to
-- commit and then deletes its rows (the cascade's DELETE is a later statement,
-- whose snapshot sees them), or the cascade does, and the check runs after the
-- cascade committed and sees the tombstone. The error names a constraint, which
-- the service maps to UNAUTHENTICATED.
--
-- An upload calls this first in its transaction, before it locks the owner's
-- `files.usage` row: the cascade takes the advisory lock and then that row
-- (its DELETE's trigger), so the same order here cannot deadlock with it.
CREATE FUNCTION files.guard_owner(owner uuid) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(files.owner_lock_key(owner));
    IF EXISTS (SELECT 1 FROM files.deleted_users AS d WHERE d.owner_id = owner) THEN
        RAISE EXCEPTION 'user % was deleted', owner
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'files_owner_not_deleted';
    END IF;
END
$$;

CREATE FUNCTION files.guard_file_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM files.guard_owner(NEW.owner_id);
    RETURN NEW;
END
$$;

-- Every insert, whatever code makes it. Only inserts: updates (renames) and
-- deletes cannot give a deleted user a row (theirs are gone and `owner_id` is
-- never changed), and taking the lock there, while holding the row's lock,
-- could deadlock with a cascade waiting for that row.
CREATE TRIGGER files_owner_not_deleted BEFORE INSERT ON files.files
    FOR EACH ROW EXECUTE FUNCTION files.guard_file_owner();
