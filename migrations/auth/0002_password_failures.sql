-- Password checks per account that did not end in success, in the current
-- window (PASSWORD_FAILURE_LIMIT). Keyed by the normalised email, known or not,
-- so the limit does not tell which emails have accounts; rows whose window has
-- ended are pruned.
CREATE TABLE auth.password_failures (
    email             text        PRIMARY KEY,
    failures          integer     NOT NULL,
    window_started_at timestamptz NOT NULL
);
CREATE INDEX password_failures_window_idx ON auth.password_failures (window_started_at);
