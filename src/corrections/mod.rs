//! Citizens' correction requests and the 48-hour rule (SPEC §8.5), and the counts the
//! Ministry steers by (SPEC §8.6).
//!
//! A citizen reports a missing or wrong dose to the facility that gave it; the facility has
//! 48 hours to close the request (DOMAIN §1). What identifies the citizen (identity number,
//! birth date, message, contact) is sealed with an AEAD key derived from the deployment
//! secret before it reaches the store, bound to the request id so that a sealed blob cannot
//! be moved to another request. The facility code, kind and times stay in clear: they are
//! what the queue and the reports sort and count by, and they name no person.
//!
//! This module holds the pure decisions (validation, sealing, the queue's order, the
//! reports' arithmetic); `store` keeps the rows and `service` the routes.

mod report;

pub use report::RunTally;
pub use report::{By, CountRow, GroupReport, RequestTiming, Totals, group_reports, run_counts};

use serde::{Deserialize, Serialize};

use crate::secret::DerivationKey;

/// A request must be closed within this many seconds of its filing (48 hours).
pub const DUE_SECS: i64 = 48 * 3600;

/// The longest message a citizen may write, in characters (SPEC §8.5).
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// The longest contact (a phone number or an e-mail address), in characters.
pub const MAX_CONTACT_CHARS: usize = 200;

/// The longest resolution note, in characters.
pub const MAX_NOTE_CHARS: usize = 1000;

/// The longest identity number accepted (a passport number of a foreigner is at most 20).
const MAX_ID_CHARS: usize = 32;

/// What the citizen reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A dose they received is not on their passport.
    MissingDose,
    /// A dose carries a wrong date, product or name.
    WrongData,
    /// A dose on their passport was never theirs.
    NotMine,
}

impl Kind {
    /// The word of the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::MissingDose => "missing_dose",
            Kind::WrongData => "wrong_data",
            Kind::NotMine => "not_mine",
        }
    }

    /// The kind a stored word names.
    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::MissingDose, Kind::WrongData, Kind::NotMine].into_iter().find(|k| k.as_str() == s)
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for the facility.
    Open,
    /// The facility fixed it (by a correction, a retraction or a follow-up batch).
    Resolved,
    /// The facility found nothing to fix, and said why in the note.
    Rejected,
}

impl Status {
    /// The word of the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Resolved => "resolved",
            Status::Rejected => "rejected",
        }
    }

    /// The status a stored word names.
    pub fn parse(s: &str) -> Option<Status> {
        [Status::Open, Status::Resolved, Status::Rejected].into_iter().find(|k| k.as_str() == s)
    }
}

/// Which requests a queue lists (`GET /api/v1/corrections?status=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueStatus {
    /// Open, due or not (the default).
    #[default]
    Open,
    /// Open and past `due_at`.
    Overdue,
    /// Resolved or rejected.
    Closed,
}

/// A request as the citizen files it (`POST /api/v1/corrections`), before validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filing {
    /// CCCD/CMND or a foreigner's passport number.
    pub id_number: String,
    /// `YYYY-MM-DD` (or a year-month or a year, as the registry may hold).
    pub dob: String,
    /// The facility that gave the dose (PPNNN).
    pub facility_code: String,
    /// `missing_dose`, `wrong_data` or `not_mine`.
    pub kind: String,
    /// What is wrong, at most [`MAX_MESSAGE_CHARS`] characters.
    #[serde(default)]
    pub message: String,
    /// How to reach the citizen (optional).
    #[serde(default)]
    pub contact: Option<String>,
}

/// What identifies the citizen: sealed at rest, shown to the facility the request names.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Personal {
    /// Identity number as typed (trimmed, upper case).
    pub id_number: String,
    /// Birth date as typed (normalised to ISO).
    pub dob: String,
    /// The citizen's message.
    pub message: String,
    /// How to reach them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

impl std::fmt::Debug for Personal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Personal { .. }")
    }
}

/// Why a filing or a resolution is refused (422 with this sentence).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequest {
    /// The identity number is missing or too long.
    #[error("id_number must be 1 to {MAX_ID_CHARS} letters and digits")]
    IdNumber,
    /// The birth date cannot be read.
    #[error("dob must be a date, YYYY-MM-DD")]
    Dob,
    /// Not a PPNNN facility code of a province.
    #[error("facility_code must be a facility code PPNNN of a province (for example 01001)")]
    FacilityCode,
    /// Not one of the three kinds.
    #[error("kind must be missing_dose, wrong_data or not_mine")]
    Kind,
    /// Empty or longer than allowed.
    #[error("message must be 1 to {MAX_MESSAGE_CHARS} characters")]
    Message,
    /// Longer than allowed.
    #[error("contact must be at most {MAX_CONTACT_CHARS} characters")]
    Contact,
    /// Longer than allowed.
    #[error("note must be at most {MAX_NOTE_CHARS} characters")]
    Note,
}

/// A filing that passed validation: what the store keeps of it, in clear and sealed.
#[derive(Debug, Clone)]
pub struct Valid {
    /// The facility that gave the dose.
    pub facility_code: String,
    /// What is reported.
    pub kind: Kind,
    /// The citizen's fields, to be sealed.
    pub personal: Personal,
}

/// Checks a filing (SPEC §8.5 and issue #10's bad input): nothing is stored unless it passes.
pub fn validate(filing: Filing) -> Result<Valid, InvalidRequest> {
    let id_number = filing.id_number.trim().to_ascii_uppercase();
    if id_number.is_empty()
        || id_number.chars().count() > MAX_ID_CHARS
        || !id_number.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(InvalidRequest::IdNumber);
    }
    let dob = crate::dates::parse_date(filing.dob.trim()).ok_or(InvalidRequest::Dob)?.to_iso();
    let facility_code = filing.facility_code.trim().to_owned();
    if !crate::provinces::is_facility_code(&facility_code) {
        return Err(InvalidRequest::FacilityCode);
    }
    let kind = Kind::parse(filing.kind.trim()).ok_or(InvalidRequest::Kind)?;
    let message = filing.message.trim().to_owned();
    if message.is_empty() || message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(InvalidRequest::Message);
    }
    let contact = filing.contact.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty());
    if contact.as_ref().is_some_and(|c| c.chars().count() > MAX_CONTACT_CHARS) {
        return Err(InvalidRequest::Contact);
    }
    Ok(Valid { facility_code, kind, personal: Personal { id_number, dob, message, contact } })
}

/// Checks a resolution note.
pub fn validate_note(note: &str) -> Result<String, InvalidRequest> {
    let note = note.trim();
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(InvalidRequest::Note);
    }
    Ok(note.to_owned())
}

/// A stored request.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// Random, 26 characters of base32: unguessable, so the id alone reveals nothing.
    pub request_id: String,
    /// Keyed hash of the citizen's status code (the code itself is never stored).
    pub code_hash: Vec<u8>,
    /// The facility the request names.
    pub facility_code: String,
    /// What is reported.
    pub kind: Kind,
    /// [`Personal`], sealed and bound to `request_id`.
    pub sealed: Vec<u8>,
    /// Filed at (Unix seconds).
    pub created_at: i64,
    /// `created_at` + 48 h.
    pub due_at: i64,
    /// Where it stands.
    pub status: Status,
    /// Closed at, once closed.
    pub closed_at: Option<i64>,
    /// Who closed it: a facility code or `ministry`.
    pub closed_by: Option<String>,
    /// The facility's note to the citizen, sealed (it may quote personal data).
    pub note_sealed: Option<Vec<u8>>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("request_id", &self.request_id)
            .field("facility_code", &self.facility_code)
            .field("kind", &self.kind)
            .field("status", &self.status)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl Request {
    /// Open and past due at `now`.
    pub fn overdue(&self, now: i64) -> bool {
        self.status == Status::Open && now > self.due_at
    }

    /// Closed after its due time.
    pub fn late(&self) -> bool {
        self.closed_at.is_some_and(|c| c > self.due_at)
    }
}

/// No system randomness, or the AEAD refused: the request cannot be stored.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("could not seal the request's personal fields")]
pub struct SealFailed;

/// A new request and the status code the citizen checks it with (shown once, never stored).
pub fn file(key: &DerivationKey, valid: &Valid, now: i64) -> Result<(Request, String), SealFailed> {
    let rng = ring::rand::SystemRandom::new();
    let mut id = [0u8; 16];
    let mut code = [0u8; 10];
    ring::rand::SecureRandom::fill(&rng, &mut id).map_err(|_| SealFailed)?;
    ring::rand::SecureRandom::fill(&rng, &mut code).map_err(|_| SealFailed)?;
    let request_id = base32(&id);
    let status_code = base32(&code)[..STATUS_CODE_LEN].to_owned();
    let plain = serde_json::to_vec(&valid.personal).map_err(|_| SealFailed)?;
    let sealed = key.seal_bound(request_id.as_bytes(), &plain).map_err(|_| SealFailed)?;
    let request = Request {
        code_hash: code_hash(key, &request_id, &status_code),
        request_id,
        facility_code: valid.facility_code.clone(),
        kind: valid.kind,
        sealed,
        created_at: now,
        due_at: now + DUE_SECS,
        status: Status::Open,
        closed_at: None,
        closed_by: None,
        note_sealed: None,
    };
    Ok((request, status_code))
}

/// Characters of a status code: 12 of base32, 60 bits, out of reach of guessing under the
/// lookup's rate limits.
pub const STATUS_CODE_LEN: usize = 12;

/// The keyed hash a status code is stored as, bound to its request.
pub fn code_hash(key: &DerivationKey, request_id: &str, status_code: &str) -> Vec<u8> {
    key.tag_of(
        "vaxpass/correction-code/v1",
        &[request_id.as_bytes(), status_code.trim().to_ascii_uppercase().as_bytes()],
    )
}

/// Whether `status_code` is the request's, compared in constant time.
pub fn code_matches(key: &DerivationKey, request: &Request, status_code: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    bool::from(code_hash(key, &request.request_id, status_code).ct_eq(&request.code_hash))
}

/// The citizen's fields of a request; `None` if the seal is not this deployment's or was
/// altered.
pub fn open_personal(key: &DerivationKey, request: &Request) -> Option<Personal> {
    let plain = key.open_bound(request.request_id.as_bytes(), &request.sealed)?;
    serde_json::from_slice(&plain).ok()
}

/// Seals a resolution note for `request_id`.
pub fn seal_note(key: &DerivationKey, request_id: &str, note: &str) -> Result<Vec<u8>, SealFailed> {
    key.seal_bound(note_context(request_id).as_bytes(), note.as_bytes()).map_err(|_| SealFailed)
}

/// The note of a closed request.
pub fn open_note(key: &DerivationKey, request: &Request) -> Option<String> {
    let sealed = request.note_sealed.as_ref()?;
    String::from_utf8(key.open_bound(note_context(&request.request_id).as_bytes(), sealed)?).ok()
}

fn note_context(request_id: &str) -> String {
    format!("note:{request_id}")
}

/// RFC 4648 base32 without padding (upper case, no 0/1/8/9 to misread).
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Whether `s` can be a request id (26 base32 characters): anything else is 404 without a
/// database read.
pub fn is_request_id(s: &str) -> bool {
    s.len() == 26 && s.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

/// Filter of a facility's or the Ministry's queue.
#[derive(Debug, Clone, Default)]
pub struct Queue {
    /// Only requests naming this facility.
    pub facility: Option<String>,
    /// Only requests naming facilities of this province (two digits).
    pub province: Option<String>,
    /// Open, overdue or closed.
    pub status: QueueStatus,
    /// The clock `overdue` is judged at.
    pub now: i64,
    /// At most this many, oldest due first.
    pub limit: u32,
}

#[cfg(test)]
mod tests;
