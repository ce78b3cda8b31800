-- The relay deletes published rows older than OUTBOX_RETENTION every hour; this
-- finds them without reading the whole table.
CREATE INDEX outbox_published_at_idx ON auth.outbox (published_at) WHERE published_at IS NOT NULL;
