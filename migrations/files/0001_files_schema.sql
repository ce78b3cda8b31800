-- The files service owns the `files` schema; nothing outside this service reads it.
CREATE SCHEMA IF NOT EXISTS files;

-- One row per stored file. The blob lives in object storage under `storage_key`
-- (random); a row is only ever inserted after its blob was written.
CREATE TABLE files.files (
    id           uuid        PRIMARY KEY,
    owner_id     uuid        NOT NULL,
    filename     text        NOT NULL,
    content_type text        NOT NULL,
    size         bigint      NOT NULL,
    sha256       text        NOT NULL,
    storage_key  text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT files_storage_key_key UNIQUE (storage_key),
    CONSTRAINT files_filename_length CHECK (octet_length(filename) BETWEEN 1 AND 255),
    CONSTRAINT files_size_nonnegative CHECK (size >= 0),
    CONSTRAINT files_sha256_hex CHECK (sha256 ~ '^[0-9a-f]{64}$')
);
-- The viewer's files, newest first (ties broken by id): one index range scan per page.
CREATE INDEX files_owner_created_idx ON files.files (owner_id, created_at DESC, id DESC);

-- Blobs whose rows are gone, written in the transaction that removed the rows and
-- removed once the blob is deleted, so a failed blob deletion is retried, never forgotten.
CREATE TABLE files.blob_deletions (
    storage_key  text        PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now(),
    attempts     integer     NOT NULL DEFAULT 0,
    last_error   text
);

-- Events already handled by the consumer (idempotency on eventId).
CREATE TABLE files.processed_events (
    event_id     uuid        PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);
