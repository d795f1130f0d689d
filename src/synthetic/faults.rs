//! The faults a typed row may carry (DOMAIN §1), each with the reason the gate must give.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    Clean,
    NoDiacritics,
    AllCaps,
    Nfd,
    ExtraSpaces,
    OldTonePlacement,
    DobPlaceholder,
    CmndTyped,
    LeadingZeroLost,
    IdDotsSpaces,
    CccdPrefix,
    FullwidthDigits,
    ScientificNotation,
    HealthInsuranceNumber,
    PhoneAsId,
    IdMissingText,
    BlankId,
    BorrowedIdentity,
    MistypedIdOtherPerson,
    MistypedIdNobody,
    WrongProvince,
    NameTypo,
    DroppedMiddleName,
    SwappedNameOrder,
    DobDayMonthSwap,
    WrongSex,
    UnknownVaccine,
    FutureDate,
    DateBeforeBirth,
    DateBeforeProgram,
    DuplicateRow,
    TooSoon,
    BadRow,
    Foreigner,
    UnregisteredPerson,
}

impl Fault {
    /// The `error_kind` label in `truth.csv`.
    pub(super) fn label(self) -> &'static str {
        match self {
            Fault::Clean => "clean",
            Fault::NoDiacritics => "no_diacritics",
            Fault::AllCaps => "all_caps",
            Fault::Nfd => "nfd",
            Fault::ExtraSpaces => "extra_spaces",
            Fault::OldTonePlacement => "old_tone_placement",
            Fault::DobPlaceholder => "dob_placeholder",
            Fault::CmndTyped => "cmnd_typed",
            Fault::LeadingZeroLost => "leading_zero_lost",
            Fault::IdDotsSpaces => "id_dots_spaces",
            Fault::CccdPrefix => "cccd_prefix",
            Fault::FullwidthDigits => "fullwidth_digits",
            Fault::ScientificNotation => "scientific_notation",
            Fault::HealthInsuranceNumber => "health_insurance_number",
            Fault::PhoneAsId => "phone_as_id",
            Fault::IdMissingText => "id_missing_text",
            Fault::BlankId => "blank_id",
            Fault::BorrowedIdentity => "borrowed_identity",
            Fault::MistypedIdOtherPerson => "mistyped_id_other_person",
            Fault::MistypedIdNobody => "mistyped_id_nobody",
            Fault::WrongProvince => "wrong_province",
            Fault::NameTypo => "name_typo",
            Fault::DroppedMiddleName => "dropped_middle_name",
            Fault::SwappedNameOrder => "swapped_name_order",
            Fault::DobDayMonthSwap => "dob_day_month_swap",
            Fault::WrongSex => "wrong_sex",
            Fault::UnknownVaccine => "unknown_vaccine",
            Fault::FutureDate => "future_date",
            Fault::DateBeforeBirth => "date_before_birth",
            Fault::DateBeforeProgram => "date_before_program",
            Fault::DuplicateRow => "duplicate_row",
            Fault::TooSoon => "too_soon",
            Fault::BadRow => "bad_row",
            Fault::Foreigner => "foreigner",
            Fault::UnregisteredPerson => "unregistered_person",
        }
    }
}

/// Faults drawn per ordinary row, weights per 10 000 (module docs table).
pub(super) const ROW_FAULTS: [(Fault, u32); 28] = [
    (Fault::Clean, 7_190),
    (Fault::NoDiacritics, 220),
    (Fault::AllCaps, 160),
    (Fault::Nfd, 70),
    (Fault::ExtraSpaces, 90),
    (Fault::OldTonePlacement, 60),
    (Fault::CmndTyped, 180),
    (Fault::LeadingZeroLost, 80),
    (Fault::IdDotsSpaces, 70),
    (Fault::CccdPrefix, 50),
    (Fault::FullwidthDigits, 20),
    (Fault::ScientificNotation, 90),
    (Fault::HealthInsuranceNumber, 60),
    (Fault::PhoneAsId, 60),
    (Fault::IdMissingText, 100),
    (Fault::BlankId, 200),
    (Fault::WrongProvince, 60),
    (Fault::MistypedIdNobody, 100),
    (Fault::MistypedIdOtherPerson, 110),
    (Fault::NameTypo, 350),
    (Fault::DroppedMiddleName, 120),
    (Fault::SwappedNameOrder, 60),
    (Fault::DobDayMonthSwap, 160),
    (Fault::WrongSex, 90),
    (Fault::FutureDate, 40),
    (Fault::DateBeforeBirth, 30),
    (Fault::DateBeforeProgram, 40),
    (Fault::BadRow, 70),
];

pub(super) const SIGN: &str = "SIGN";
pub(super) const BAD_ROW: &str = "BAD_ROW";
pub(super) const ID_MISSING: &str = "ID_MISSING";
pub(super) const ID_BAD_FORMAT: &str = "ID_BAD_FORMAT";
pub(super) const ID_INCONSISTENT: &str = "ID_INCONSISTENT";
pub(super) const NOT_IN_REGISTRY: &str = "NOT_IN_REGISTRY";
pub(super) const NAME_MISMATCH: &str = "NAME_MISMATCH";
pub(super) const DOB_MISMATCH: &str = "DOB_MISMATCH";
pub(super) const SEX_MISMATCH: &str = "SEX_MISMATCH";
pub(super) const UNKNOWN_VACCINE: &str = "UNKNOWN_VACCINE";
pub(super) const BAD_DATE: &str = "BAD_DATE";
pub(super) const DUPLICATE_DOSE: &str = "DUPLICATE_DOSE";
pub(super) const DOSE_SEQUENCE: &str = "DOSE_SEQUENCE";
