-- A person's current passport is the one their row points at (SPEC §8.2). A run that signs
-- a person anew then writes one narrow row, in the chunk's person order, instead of
-- rewriting the earlier passport's wide row at a random place: superseding 197,324
-- passports in place cost 2.5 s of a 300,000-person follow-up batch. Forward only.
--
-- `passports.status` is still written for revocations ('revoked'), and keeps the
-- 'superseded' of rows written before this version. A passport stored 'current' that its
-- holder's row no longer points at is superseded (store/mod.rs, STATUS_SQL).
--
-- No backfill: while a person's pointer is NULL their passports' stored statuses stand, as
-- they did, and the first passport signed for them sets it (a national database would
-- otherwise spend its upgrade on one correlated lookup per person).
ALTER TABLE persons ADD COLUMN current_uvci TEXT;

-- How many earlier passports each chunk of a run superseded, for the run's summary: a
-- run started again after a kill adds only what its earlier attempt did not commit.
CREATE TABLE run_superseded (
    run_id        TEXT NOT NULL,
    n             BIGINT NOT NULL
);
CREATE INDEX run_superseded_by_run ON run_superseded (run_id);

-- Every passport with its status as vaxpass reads it, for operators' queries and the tests'.
CREATE VIEW passport_status AS
SELECT p.uvci, p.person_hash, p.doses,
       CASE WHEN p.status = 'current' AND s.current_uvci IS NOT NULL AND s.current_uvci <> p.uvci
            THEN 'superseded' ELSE p.status END AS status
FROM passports p LEFT JOIN persons s ON s.person_hash = p.person_hash;
