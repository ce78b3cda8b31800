-- Every access token carries its user's session version (`sv`); ending the
-- user's sessions (logoutAll, changePassword, deleteAccount, a reused refresh
-- token) bumps it, and verifiers refuse tokens below it. Tokens issued before
-- this column existed have no `sv` and count as 0.
ALTER TABLE auth.users ADD COLUMN session_version bigint NOT NULL DEFAULT 0;

-- Each bump, for verifiers to read in order (`seq` after their cursor). Rows
-- are written under a table lock, so `seq` order is commit order and a
-- cursor never skips a row that commits late. Deleted users' rows stay (no
-- foreign key); a row is pruned once every token it refuses has expired.
CREATE TABLE auth.session_revocations (
    seq        bigserial   PRIMARY KEY,
    user_id    uuid        NOT NULL,
    version    bigint      NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_revocations_revoked_at_idx ON auth.session_revocations (revoked_at);
