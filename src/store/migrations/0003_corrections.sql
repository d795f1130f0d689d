-- Citizens' correction requests (SPEC §8.5) and the counters of the Ministry's reports
-- (SPEC §8.6). Forward only.

-- The citizen's identity number, birth date, message and contact are in `sealed` (AEAD,
-- bound to request_id); the resolution note in `note_sealed`. The status code is stored as
-- a keyed hash only.
CREATE TABLE correction_requests (
    request_id    TEXT PRIMARY KEY,
    code_hash     BYTEA NOT NULL,
    facility_code TEXT NOT NULL,
    kind          TEXT NOT NULL,
    sealed        BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    due_at        BIGINT NOT NULL,
    status        TEXT NOT NULL,
    closed_at     BIGINT,
    closed_by     TEXT,
    note_sealed   BYTEA
);
-- A facility's queue, oldest due first; the Ministry's, by status.
CREATE INDEX correction_requests_by_facility ON correction_requests (facility_code, status, due_at);
CREATE INDEX correction_requests_by_status ON correction_requests (status, due_at);

-- What each run (batch or retraction) counted, per facility: replaced when a run is
-- started again, so the totals stay exact.
CREATE TABLE run_counts (
    run_id        TEXT NOT NULL,
    facility_code TEXT NOT NULL,
    counter       TEXT NOT NULL,
    n             BIGINT NOT NULL,
    PRIMARY KEY (run_id, facility_code, counter)
);
-- Running totals per facility (the sum of run_counts), read by every report.
CREATE TABLE facility_counts (
    facility_code TEXT NOT NULL,
    counter       TEXT NOT NULL,
    n             BIGINT NOT NULL,
    PRIMARY KEY (facility_code, counter)
);
-- What a database signed before the counters existed.
INSERT INTO facility_counts (facility_code, counter, n)
    SELECT facility_code, 'passports', COUNT(*) FROM passports GROUP BY facility_code;
INSERT INTO facility_counts (facility_code, counter, n)
    SELECT facility_code, 'revoked', COUNT(*) FROM passports WHERE status = 'revoked' GROUP BY facility_code;
INSERT INTO facility_counts (facility_code, counter, n)
    SELECT facility_code, 'signed_rows', COUNT(*) FROM doses GROUP BY facility_code;
