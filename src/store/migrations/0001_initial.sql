-- One schema for SQLite and PostgreSQL (types both accept; SQLite stores BYTEA values as blobs).
-- Identity numbers and claim codes are only ever stored as keyed hashes (SPEC §7).
CREATE TABLE IF NOT EXISTS passports (
    uvci          TEXT PRIMARY KEY,
    id_hash       BYTEA NOT NULL,
    claim_hash    BYTEA NOT NULL,
    facility_code TEXT NOT NULL,
    kid           TEXT NOT NULL,
    hc1           TEXT NOT NULL,
    batch_id      TEXT NOT NULL,
    signed_at     BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS passports_by_id_hash ON passports (id_hash);

-- What each facility key signed and when.
CREATE TABLE IF NOT EXISTS audit_log (
    at            BIGINT NOT NULL,
    facility_code TEXT NOT NULL,
    kid           TEXT NOT NULL,
    action        TEXT NOT NULL,
    uvci          TEXT NOT NULL,
    batch_id      TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS batches (
    batch_id      TEXT PRIMARY KEY,
    facility_code TEXT NOT NULL,
    status        TEXT NOT NULL,
    persons_total BIGINT NOT NULL,
    persons_done  BIGINT NOT NULL,
    summary       TEXT,
    started_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Revocations (SPEC §7 POST /api/v1/revocations): kind 'passport' (value: UVCI SHA-256 hex)
-- or 'facility' (value: kid base64). Never deleted, so their count versions the trust list.
CREATE TABLE IF NOT EXISTS revocations (
    kind          TEXT NOT NULL,
    value         TEXT NOT NULL,
    revoked_at    BIGINT NOT NULL,
    PRIMARY KEY (kind, value)
);

-- Facility API tokens (SPEC §7 station uploads): only their SHA-256 is stored.
CREATE TABLE IF NOT EXISTS facility_tokens (
    token_hash    BYTEA PRIMARY KEY,
    facility_code TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- What a batch uploaded through the service produced: its passports (claim codes are
-- derived from the UVCI, never stored) and its rejected rows.
CREATE TABLE IF NOT EXISTS batch_passports (
    batch_id      TEXT NOT NULL,
    uvci          TEXT NOT NULL,
    record_ids    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS batch_passports_by_batch ON batch_passports (batch_id);
CREATE TABLE IF NOT EXISTS batch_rejections (
    batch_id      TEXT NOT NULL,
    record_id     TEXT NOT NULL,
    reason        TEXT NOT NULL,
    detail        TEXT NOT NULL,
    suggestion    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS batch_rejections_by_batch ON batch_rejections (batch_id);
