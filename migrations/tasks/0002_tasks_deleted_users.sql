-- Deletion is final. Once `user.deleted` has been applied, the user's id stays
-- here (written in the cascade's transaction) and no task can be inserted for
-- it again, by whatever code: a token that outlives its account buys nothing.
CREATE TABLE tasks.deleted_users (
    user_id    uuid        PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);

-- The key of a user's transaction-level advisory lock, which orders inserts
-- against the cascade: inserts take it shared, the cascade exclusive. Prefixed
-- with the schema, so the files service's lock on the same user (one database
-- in one-process mode) is another one.
CREATE FUNCTION tasks.owner_lock_key(owner uuid) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN hashtextextended('tasks:' || owner::text, 0);

-- Refuses to let `owner` gain rows once deleted. Why it cannot miss a cascade:
-- the lock is taken first and held until the caller's transaction ends, and the
-- check after it is a query of its own in a VOLATILE function, so at READ
-- COMMITTED (every writer here) it takes a fresh snapshot once the lock is
-- held. Either the insert holds the lock first, and the cascade waits for it
-- to commit and then deletes its rows (the cascade's DELETE is a later
-- statement, whose snapshot sees them), or the cascade does, and the check
-- runs after the cascade committed and sees the tombstone. The error names a
-- constraint, which the service maps to UNAUTHENTICATED.
CREATE FUNCTION tasks.guard_owner(owner uuid) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(tasks.owner_lock_key(owner));
    IF EXISTS (SELECT 1 FROM tasks.deleted_users WHERE user_id = owner) THEN
        RAISE EXCEPTION 'user % was deleted', owner
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'tasks_owner_not_deleted';
    END IF;
END
$$;

CREATE FUNCTION tasks.guard_task_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tasks.guard_owner(NEW.user_id);
    RETURN NEW;
END
$$;

-- Only inserts: updates and deletes cannot give a deleted user a row (theirs
-- are gone and `user_id` is never changed), and taking the lock there, while
-- holding the row's lock, could deadlock with a cascade waiting for that row.
CREATE TRIGGER tasks_owner_not_deleted BEFORE INSERT ON tasks.tasks
    FOR EACH ROW EXECUTE FUNCTION tasks.guard_task_owner();
