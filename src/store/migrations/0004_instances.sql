-- Several service instances on one PostgreSQL database (issue 11): shared rate-limit
-- counters and leases on service batches. Forward only. SQLite gets the same tables; its
-- single instance keeps its counters in memory.

-- One attempt counter per key and window. `key_hash` is a keyed hash (the deployment
-- secret) of the counter's key, which names a client address or an identity-number hash:
-- nothing personal in clear. `window_end` is in milliseconds of the database's clock, which
-- every instance shares.
CREATE TABLE rate_limits (
    key_hash   BYTEA PRIMARY KEY,
    window_end BIGINT NOT NULL,
    n          BIGINT NOT NULL
);
CREATE INDEX rate_limits_by_end ON rate_limits (window_end);

-- The instance signing a running service batch, and until when (Unix seconds) it holds it
-- unless it renews; a batch past its lease is marked failed by any instance, with `error`.
ALTER TABLE batches ADD COLUMN lease_owner TEXT;
ALTER TABLE batches ADD COLUMN lease_expires_at BIGINT;
ALTER TABLE batches ADD COLUMN error TEXT;
CREATE INDEX batches_by_lease ON batches (status, lease_expires_at);
