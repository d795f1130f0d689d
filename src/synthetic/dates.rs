//! Dates and rates: the vaccination calendar and how often each fault occurs.

use super::*;

/// Start of COVID-19 vaccination in Viet Nam (SPEC §5 `BAD_DATE`).
pub(super) const PROGRAM_START: Date = date!(2021 - 03 - 08);
/// Last vaccination date generated.
pub(super) const LAST_DOSE: Date = date!(2022 - 12 - 31);
/// Ages (0–95) are counted at this date.
pub(super) const AGE_REFERENCE: Date = date!(2022 - 06 - 30);

/// Chance (per million registry persons) of also generating a foreign national: ≈ 0.3 % of rows.
pub(super) const FOREIGNER_PPM: u32 = 2_600;
/// Chance (per million registry persons) of also generating a person missing from the
/// registry: ≈ 0.8 % of rows (DOMAIN §1: 3.4 M of 205 M doses could not be matched at all).
pub(super) const UNREGISTERED_PPM: u32 = 8_000;
/// Registry persons born before 1950 whose registry birth date is a year or year-month only.
pub(super) const PARTIAL_DOB_PPM: u32 = 20_000;
/// Rows of a partial-dob person that type the `01/01/yyyy` placeholder.
pub(super) const PLACEHOLDER_PPM: u32 = 800_000;
/// Adults (18+) with an old 9-digit CMND in the registry.
pub(super) const CMND_PPM: u32 = 300_000;
/// Odd-numbered CMND holders whose CMND equals the previous person's (SPEC §5: "Old CMNDs are
/// not unique"): ≈ 0.5 % of CMNDs end up shared by two persons.
pub(super) const SHARED_CMND_PPM: u32 = 20_000;
/// Odd lanes whose person is a "neighbour" of the previous person (see the module docs).
pub(super) const NEIGHBOUR_PPM: u32 = 300_000;
/// Vaccinated children aged 5–13 recorded under an adult's identity number.
pub(super) const BORROWED_PPM: u32 = 100_000;
/// Signed rows re-entered later (DUPLICATE_DOSE).
pub(super) const DUPLICATE_PPM: u32 = 12_000;
/// Signed rows followed by an extra dose 1–13 days later (DOSE_SEQUENCE).
pub(super) const TOO_SOON_PPM: u32 = 6_000;
/// Vaccinated persons with an extra row naming an unlicensed product (UNKNOWN_VACCINE).
pub(super) const UNKNOWN_VACCINE_PPM: u32 = 12_000;

/// Dose rows held back to interleave persons: bounds memory, not the output size.
pub(super) const DOSE_WINDOW: usize = 4_096;
/// Registry rows held back to shuffle the registry order.
pub(super) const REGISTRY_WINDOW: usize = 4_096;
/// Values of the six random CCCD digits.
pub(super) const BLOCK: u64 = 1_000_000;

// Independent PRNG streams per purpose, so that adding a draw to one does not shift another.
pub(super) const TAG_LANE: u64 = 1;
pub(super) const TAG_GROUP: u64 = 2;
pub(super) const TAG_PERSON: u64 = 3;
pub(super) const TAG_DOSE: u64 = 4;
pub(super) const TAG_ROWS: u64 = 5;
pub(super) const TAG_EXTRA: u64 = 6;
pub(super) const TAG_FOREIGN: u64 = 7;
pub(super) const TAG_KEYS: u64 = 8;
pub(super) const TAG_SHUFFLE: u64 = 9;
