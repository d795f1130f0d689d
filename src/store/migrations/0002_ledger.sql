-- The dose ledger and passport history (SPEC §8), facility token lifetimes (issue #8 item 4).
-- Forward only; applied once, in a transaction, when a store opens (store/mod.rs).

-- Every accepted dose row, keyed by the vaccination platform's record id (unique
-- nationally). person_hash is the keyed hash of the person's identity, never the number.
CREATE TABLE doses (
    record_id     TEXT PRIMARY KEY,
    person_hash   BYTEA NOT NULL,
    facility_code TEXT NOT NULL,
    mp            TEXT NOT NULL,
    vaccinated_on TEXT NOT NULL,
    batch_id      TEXT NOT NULL,
    recorded_at   BIGINT NOT NULL
);
CREATE INDEX doses_by_person ON doses (person_hash);

-- Who a person is (name, birth date, identity number), sealed with an AEAD key derived from
-- the deployment secret: re-issuing a passport after a retraction or a correction that moved
-- a dose away needs it, and neither the command nor the service then holds the registry.
CREATE TABLE persons (
    person_hash   BYTEA PRIMARY KEY,
    sealed        BYTEA NOT NULL
);

-- Records retracted (SPEC §8.3), so that a retraction run that is started again recognises
-- the records it already removed.
CREATE TABLE retractions (
    record_id     TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    person_hash   BYTEA NOT NULL,
    facility_code TEXT NOT NULL,
    reason        TEXT NOT NULL,
    at            BIGINT NOT NULL
);
CREATE INDEX retractions_by_run ON retractions (run_id);

-- A passport's place in its holder's history (SPEC §8.2). Passports signed before the ledger
-- existed have no person_hash and keep status 'current'.
ALTER TABLE passports ADD COLUMN person_hash BYTEA;
ALTER TABLE passports ADD COLUMN holder_hash BYTEA;
ALTER TABLE passports ADD COLUMN content_hash BYTEA;
ALTER TABLE passports ADD COLUMN doses TEXT;
ALTER TABLE passports ADD COLUMN status TEXT NOT NULL DEFAULT 'current';
ALTER TABLE passports ADD COLUMN changed_by TEXT;
ALTER TABLE passports ADD COLUMN changed_at BIGINT;
CREATE INDEX passports_by_person ON passports (person_hash);
CREATE INDEX passports_by_change ON passports (changed_by);
-- What a run signed, found without scanning every passport (a run started again).
CREATE INDEX passports_by_batch ON passports (batch_id);

-- The audit log says why (a revocation's reason, a retracted record).
ALTER TABLE audit_log ADD COLUMN detail TEXT;

-- Facility tokens expire and can be revoked on their own.
ALTER TABLE facility_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE facility_tokens ADD COLUMN revoked_at BIGINT;
