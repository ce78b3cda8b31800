-- The consumer deletes rows older than PROCESSED_EVENTS_RETENTION every hour;
-- this finds them without reading the whole table.
CREATE INDEX processed_events_processed_at_idx ON tasks.processed_events (processed_at);
