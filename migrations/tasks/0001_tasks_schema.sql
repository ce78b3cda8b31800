-- The tasks service owns the `tasks` schema; nothing outside this service reads it.
-- `user_id` names a user of the auth service: no foreign key crosses services,
-- the `user.deleted` event removes a deleted user's rows instead.
CREATE SCHEMA IF NOT EXISTS tasks;

CREATE TABLE tasks.tasks (
    id          uuid        PRIMARY KEY,
    user_id     uuid        NOT NULL,
    title       text        NOT NULL,
    description text,
    status      text        NOT NULL DEFAULT 'TODO',
    due_at      timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tasks_title_length CHECK (char_length(title) BETWEEN 1 AND 200 AND title = btrim(title)),
    CONSTRAINT tasks_description_length CHECK (char_length(description) <= 5000),
    CONSTRAINT tasks_status_known CHECK (status IN ('TODO', 'IN_PROGRESS', 'DONE'))
);

-- One index per ordering a page can ask for; each serves both directions, and
-- the id tiebreak makes the order total so keyset pages never skip or repeat.
CREATE INDEX tasks_user_created_idx ON tasks.tasks (user_id, created_at, id);
CREATE INDEX tasks_user_updated_idx ON tasks.tasks (user_id, updated_at, id);
-- Tasks without a due date come last in both directions: the sentinel differs.
CREATE INDEX tasks_user_due_asc_idx ON tasks.tasks (user_id, (COALESCE(due_at, 'infinity'::timestamptz)), id);
CREATE INDEX tasks_user_due_desc_idx ON tasks.tasks (user_id, (COALESCE(due_at, '-infinity'::timestamptz)), id);

-- Events already applied, so a redelivered event is skipped.
CREATE TABLE tasks.processed_events (
    event_id     uuid        PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);
