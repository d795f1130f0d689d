//! The content vaxpass signs: one person, their verified doses, and the CWT around them
//! (DCC schema 1.3.0; SPEC §3).

use time::Date;

use super::cbor::CborWriter;
use super::cwt::key;
use super::translit;
use super::uvci::Uvci;
use super::vaccines::{DISEASE_COVID19, Vaccine};

/// The DCC schema version we write.
pub const DCC_VERSION: &str = "1.3.0";

/// The issuing country of every passport we sign (ISO 3166-1 alpha-2).
pub const ISSUER_COUNTRY: &str = "VN";

/// A person as the passport names them: the registry's spelling and date of birth.
#[derive(Clone, PartialEq, Eq)]
pub struct Person {
    /// Full name, family name first, NFC (`fn` = first word, `gn` = the rest; SPEC §3).
    pub full_name: String,
    /// Date of birth in DCC form: `YYYY-MM-DD`, `YYYY-MM` or `YYYY`.
    pub dob: String,
}

impl std::fmt::Debug for Person {
    // Names and birth dates are personal data: never print them (STYLE §3).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Person { .. }")
    }
}

/// One verified dose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dose {
    /// The product (DOMAIN §3); gives the consistent `mp`/`ma`/`vp` triple.
    pub vaccine: &'static Vaccine,
    /// `dt`: the vaccination date.
    pub date: Date,
}

/// A dose with its place in the series, as written into `v` or the history claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberedDose {
    /// The dose.
    pub dose: Dose,
    /// `dn`: 1-based number in the person's sorted series.
    pub dose_number: u32,
    /// `sd`: the larger of `dn` and the primary-series length of the first dose's product
    /// (EU booster rule: a booster after 2 doses is 3/3, after 1 dose 2/2).
    pub total_doses: u32,
}

/// Numbers a person's doses: sorts by date, drops repeats of the same (date, product), and
/// gives `dn`/`sd` by the EU booster rule (SPEC §5 "Grouping").
pub fn number_doses(doses: &[Dose]) -> Vec<NumberedDose> {
    let mut sorted: Vec<Dose> = doses.to_vec();
    sorted.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.vaccine.mp.cmp(b.vaccine.mp)));
    sorted.dedup_by(|a, b| a.date == b.date && a.vaccine.mp == b.vaccine.mp);
    let primary = sorted.first().map_or(1, |d| u32::from(d.vaccine.primary_series));
    sorted
        .into_iter()
        .zip(1u32..)
        .map(|(dose, n)| NumberedDose { dose, dose_number: n, total_doses: n.max(primary) })
        .collect()
}

/// Everything one passport says.
#[derive(Debug, Clone)]
pub struct PassportContent {
    /// Who.
    pub person: Person,
    /// The numbered series, oldest first; the last is `v`, the others go to claim −65537.
    pub doses: Vec<NumberedDose>,
    /// `is`: the certificate issuer's name.
    pub issuer: String,
    /// `ci`.
    pub uvci: Uvci,
    /// `iat`, seconds since the epoch.
    pub issued_at: i64,
    /// `exp`, seconds since the epoch.
    pub expires_at: i64,
    /// Whether to write the earlier doses into claim −65537 (`--no-history` clears it).
    pub include_history: bool,
}

/// Encodes the CWT claims of a passport. Returns `None` when there is no dose.
pub(crate) fn encode_claims(c: &PassportContent) -> Option<Vec<u8>> {
    let (latest, earlier) = c.doses.split_last()?;
    let with_history = c.include_history && !earlier.is_empty();
    let (family, given) = translit::split_name(&c.person.full_name);

    let mut w = CborWriter::with_capacity(320 + earlier.len() * 110);
    w.map(if with_history { 5 } else { 4 });
    w.int(key::ISSUER).text(ISSUER_COUNTRY);
    w.int(key::EXPIRES).int(c.expires_at);
    w.int(key::ISSUED_AT).int(c.issued_at);
    w.int(key::HCERT).map(1).int(key::HCERT_DCC);
    w.map(4).text("ver").text(DCC_VERSION);
    if given.is_empty() {
        w.text("nam").map(2);
        w.text("fn").text(&family).text("fnt").text(&translit::icao(&family));
    } else {
        w.text("nam").map(4);
        w.text("fn").text(&family).text("fnt").text(&translit::icao(&family));
        w.text("gn").text(&given).text("gnt").text(&translit::icao(&given));
    }
    w.text("dob").text(&c.person.dob);
    w.text("v").array(1);
    write_dose(&mut w, latest, Some((&c.issuer, c.uvci.as_str())));
    if with_history {
        w.int(key::DOSE_HISTORY).array(earlier.len());
        for d in earlier {
            write_dose(&mut w, d, None);
        }
    }
    Some(w.into_bytes())
}

/// Writes one `v` entry; `is`/`ci` only for the certificate's own entry (SPEC §3).
fn write_dose(w: &mut CborWriter, d: &NumberedDose, issuer_and_uvci: Option<(&str, &str)>) {
    let v = d.dose.vaccine;
    w.map(if issuer_and_uvci.is_some() { 10 } else { 8 });
    w.text("tg").text(DISEASE_COVID19);
    w.text("vp").text(v.vp);
    w.text("mp").text(v.mp);
    w.text("ma").text(v.ma);
    w.text("dn").int(i64::from(d.dose_number));
    w.text("sd").int(i64::from(d.total_doses));
    w.text("dt").text(&iso_date(d.dose.date));
    w.text("co").text(ISSUER_COUNTRY);
    if let Some((issuer, uvci)) = issuer_and_uvci {
        w.text("is").text(issuer);
        w.text("ci").text(uvci);
    }
}

/// `YYYY-MM-DD` without going through a format description (this runs per dose).
pub(crate) fn iso_date(d: Date) -> String {
    let mut s = String::with_capacity(10);
    let y = d.year();
    let m = u8::from(d.month());
    let day = d.day();
    use std::fmt::Write as _;
    let _ = write!(s, "{y:04}-{m:02}-{day:02}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passport::vaccines;
    use time::macros::date;

    fn dose(name: &str, d: Date) -> Dose {
        Dose { vaccine: vaccines::lookup(name).unwrap(), date: d }
    }

    #[test]
    fn booster_after_two_dose_series_is_3_of_3() {
        let n = number_doses(&[
            dose("Pfizer", date!(2021 - 12 - 01)),
            dose("AstraZeneca", date!(2021 - 07 - 01)),
            dose("AstraZeneca", date!(2021 - 08 - 15)),
        ]);
        let got: Vec<(u32, u32)> = n.iter().map(|d| (d.dose_number, d.total_doses)).collect();
        assert_eq!(got, [(1, 2), (2, 2), (3, 3)]);
        assert_eq!(n[2].dose.vaccine.mp, "EU/1/20/1528");
    }

    #[test]
    fn booster_after_janssen_is_2_of_2() {
        let n = number_doses(&[dose("Janssen", date!(2021 - 07 - 01)), dose("Moderna", date!(2021 - 12 - 01))]);
        let got: Vec<(u32, u32)> = n.iter().map(|d| (d.dose_number, d.total_doses)).collect();
        assert_eq!(got, [(1, 1), (2, 2)]);
    }

    #[test]
    fn abdala_series_is_of_3() {
        let n = number_doses(&[dose("Abdala", date!(2021 - 09 - 01))]);
        assert_eq!((n[0].dose_number, n[0].total_doses), (1, 3));
    }

    #[test]
    fn same_product_same_day_counts_once() {
        let n = number_doses(&[dose("Pfizer", date!(2021 - 07 - 01)), dose("Comirnaty", date!(2021 - 07 - 01))]);
        assert_eq!(n.len(), 1);
    }

    #[test]
    fn iso_date_pads() {
        assert_eq!(iso_date(date!(2021 - 03 - 08)), "2021-03-08");
    }
}
