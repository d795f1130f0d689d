//! The normalised view of a verdict (SPEC §9.1): the holder and the vaccinations, read the
//! same way from every format, and the DCC-shaped payload the entry rules evaluate (§9.2).

use serde::Serialize;
use serde_json::{Value, json};

use super::{ReasonCode, SignerInfo, Verdict};
use crate::passport::vaccines;

/// Why a foreign certificate is not valid: its reason code and a sentence for people.
pub(super) type Failure = (ReasonCode, String);

/// What a foreign format's check read of a certificate, kept for the verdict whatever the
/// outcome (SHC and VDS-NC alike).
#[derive(Default)]
pub(super) struct Read {
    pub(super) holder: Option<Holder>,
    pub(super) vaccinations: Vec<Vaccination>,
    pub(super) signer: Option<SignerInfo>,
    /// Issued at, Unix seconds (an SHC's `nbf`).
    pub(super) iat: Option<f64>,
    /// Expires at, Unix seconds.
    pub(super) exp: Option<f64>,
}

impl Read {
    /// The verdict of a `format` check that ended with `outcome`, carrying what was read and
    /// the format's own `payload`.
    pub(super) fn into_verdict(self, format: Format, outcome: Result<(), Failure>, payload: Option<Value>) -> Verdict {
        let mut v = Verdict::rejected(ReasonCode::Ok, "");
        v.format = Some(format);
        match outcome {
            Ok(()) => {
                v.valid = true;
                v.detail = None;
            }
            Err((reason, detail)) => {
                v.reason = reason;
                v.detail = Some(detail);
            }
        }
        v.payload = payload;
        v.holder = self.holder;
        v.vaccinations = self.vaccinations;
        v.signer = self.signer;
        v.iat = self.iat;
        v.exp = self.exp;
        v
    }
}

/// Which format a text was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Format {
    /// EU Digital COVID Certificate (`HC1:`).
    #[serde(rename = "dcc")]
    Dcc,
    /// SMART Health Card (`shc:/`).
    #[serde(rename = "shc")]
    Shc,
    /// ICAO Visible Digital Seal for non-constrained environments (the seal's JSON).
    #[serde(rename = "vds-nc")]
    VdsNc,
}

/// The person a certificate names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// The name as printed, parts joined by spaces (family name first for a DCC).
    pub name: String,
    /// Birth date as printed (`YYYY-MM-DD`, or a part of it).
    pub dob: Option<String>,
}

/// One vaccination event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vaccination {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// The EU `mp` code when the product is known (so rules can compare), otherwise the
    /// format's own code or name.
    pub product: String,
    /// Dose number.
    pub dose: Option<u32>,
    /// Doses in the series.
    pub series: Option<u32>,
    /// Country of vaccination, ISO 3166 alpha-2.
    pub country: Option<String>,
}

/// Orders vaccinations oldest first (stable, so equal dates keep the format's order).
pub(crate) fn oldest_first(v: &mut [Vaccination]) {
    v.sort_by(|a, b| a.date.cmp(&b.date));
}

/// Numbers doses that carry none by their position, and the series as SPEC §5 does: the
/// larger of the dose number and the first product's primary series (2 when unknown).
pub(crate) fn fill_numbers(v: &mut [Vaccination]) {
    let primary = v.first().and_then(|f| vaccines::by_mp(&f.product)).map_or(2, |p| u32::from(p.primary_series));
    for (i, d) in v.iter_mut().enumerate() {
        let n = d.dose.unwrap_or(i as u32 + 1);
        d.dose = Some(n);
        if d.series.is_none() {
            d.series = Some(n.max(primary));
        }
    }
}

/// `YYYY-MM-DD` from a date or date-time; `None` unless it starts with a plausible date.
pub(crate) fn date_part(s: &str) -> Option<String> {
    let d = s.get(..10)?;
    let b = d.as_bytes();
    let ok = b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
    ok.then(|| d.to_owned())
}

/// The holder and vaccinations of a DCC payload and its dose history (claim −65537).
pub(crate) fn from_dcc(dcc: &Value, history: Option<&Value>) -> (Option<Holder>, Vec<Vaccination>) {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let holder = dcc.get("nam").map(|nam| {
        let parts: Vec<String> = match (text(nam, "fn"), text(nam, "gn")) {
            (None, None) => [text(nam, "fnt"), text(nam, "gnt")].into_iter().flatten().collect(),
            (f, g) => [f, g].into_iter().flatten().collect(),
        };
        Holder { name: parts.join(" "), dob: text(dcc, "dob") }
    });
    let entries = history
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(dcc.get("v").and_then(Value::as_array).into_iter().flatten());
    let number = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok());
    let mut vaccinations: Vec<Vaccination> = entries
        .filter_map(|e| {
            Some(Vaccination {
                date: text(e, "dt").and_then(|d| date_part(&d))?,
                product: text(e, "mp").unwrap_or_default(),
                dose: number(e, "dn"),
                series: number(e, "sd"),
                country: text(e, "co"),
            })
        })
        .collect();
    oldest_first(&mut vaccinations);
    (holder, vaccinations)
}

/// The EU `mp` code of a product named in a foreign certificate (brand or maker names as
/// SHC displays and VDS-NC `nam` print them), when it is one of the known products.
pub(crate) fn mp_of_name(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    const WORDS: [(&str, &str); 16] = [
        ("comirnaty", "EU/1/20/1528"),
        ("pfizer", "EU/1/20/1528"),
        ("spikevax", "EU/1/20/1507"),
        ("moderna", "EU/1/20/1507"),
        ("vaxzevria", "EU/1/21/1529"),
        ("astrazeneca", "EU/1/21/1529"),
        ("covishield", "Covishield"),
        ("janssen", "EU/1/20/1525"),
        ("jcovden", "EU/1/20/1525"),
        ("nuvaxovid", "EU/1/21/1618"),
        ("novavax", "EU/1/21/1618"),
        ("coronavac", "CoronaVac"),
        ("sinovac", "CoronaVac"),
        ("sinopharm", "BBIBP-CorV"),
        ("covaxin", "Covaxin"),
        ("sputnik", "Sputnik-V"),
    ];
    WORDS.iter().find(|(w, _)| lower.contains(w)).map(|(_, mp)| *mp)
}

/// The EU `mp` code of a CVX vaccine code (CDC CVX table, COVID-19 products).
pub(crate) fn mp_of_cvx(code: &str) -> Option<&'static str> {
    Some(match code {
        "207" | "221" | "227" | "228" | "229" | "230" | "311" | "312" => "EU/1/20/1507",
        "208" | "217" | "218" | "219" | "300" | "301" | "302" | "308" | "309" | "310" => "EU/1/20/1528",
        "210" => "EU/1/21/1529",
        "212" => "EU/1/20/1525",
        "211" | "313" => "EU/1/21/1618",
        "510" => "BBIBP-CorV",
        "511" => "CoronaVac",
        "502" => "Covaxin",
        _ => return None,
    })
}

/// ISO 3166-1 alpha-3 → alpha-2 (Debian iso-codes 3166-1), for VDS-NC's alpha-3 countries.
const COUNTRIES: &str = include_str!("countries.txt");

/// The alpha-2 code of an ICAO 9303 / ISO 3166 alpha-3 country code (ICAO's `D` is Germany).
pub(crate) fn alpha2_of(alpha3: &str) -> Option<&'static str> {
    let code = alpha3.trim_end_matches('<');
    match code {
        "D" => return Some("DE"),
        "GBD" | "GBN" | "GBO" | "GBP" | "GBS" => return Some("GB"),
        "EUE" => return Some("EU"),
        "RKS" => return Some("XK"),
        _ => {}
    }
    if code.len() != 3 {
        return None;
    }
    // The table is 249 `AAAaa` entries sorted by alpha-3, one separator each (a test checks
    // it): a binary search, not a scan (3.5 k instructions a seal, callgrind).
    let entry = |i: usize| COUNTRIES.get(i * 6..i * 6 + 5);
    let (mut lo, mut hi) = (0, COUNTRIES.len() / 6);
    while lo < hi {
        let mid = (lo + hi) / 2;
        let e = entry(mid)?;
        match e.as_bytes()[..3].cmp(code.as_bytes()) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return e.get(3..5),
        }
    }
    None
}

/// The DCC-shaped payload (schema 1.3.0) the entry rules of SPEC §9.2 evaluate for a
/// verdict: a DCC's own payload as it is; for SHC and VDS-NC one built from the normalised
/// holder and the latest vaccination (`v` holds one event, as in every DCC).
pub(crate) fn dcc_shaped(
    format: Option<Format>,
    payload: Option<&Value>,
    holder: Option<&Holder>,
    vaccinations: &[Vaccination],
    issuer: Option<&str>,
) -> Option<Value> {
    match format? {
        Format::Dcc => payload.cloned(),
        Format::Shc | Format::VdsNc => {
            let holder = holder?;
            // SHC prints given names first (the family name is the last word); a VDS-NC's
            // `pid.n` puts the primary identifier first, two spaces before the secondary.
            let printed = payload.and_then(|p| p.pointer("/msg/pid/n")).and_then(Value::as_str);
            let (family, given) = match (format, holder.name.rsplit_once(' '), printed.and_then(|n| n.split_once("  ")))
            {
                (Some(Format::Shc), Some((g, f)), _) => (f.to_owned(), g.to_owned()),
                (Some(Format::VdsNc), _, Some((f, g))) => (f.trim().to_owned(), g.trim().to_owned()),
                _ => (holder.name.clone(), String::new()),
            };
            let mut v = Vec::new();
            if let Some(last) = vaccinations.last() {
                let known = vaccines::by_mp(&last.product);
                v.push(json!({
                    "tg": vaccines::DISEASE_COVID19,
                    "vp": known.map_or("J07BX03", |k| k.vp),
                    "mp": last.product,
                    "ma": known.map_or("", |k| k.ma),
                    "dn": last.dose.unwrap_or(1),
                    "sd": last.series.unwrap_or(1),
                    "dt": last.date,
                    "co": last.country.clone().unwrap_or_default(),
                    "is": issuer.unwrap_or_default(),
                    "ci": "",
                }));
            }
            Some(json!({
                "ver": "1.3.0",
                "nam": {"fn": family, "gn": given},
                "dob": holder.dob.clone().unwrap_or_default(),
                "v": v,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_map_icao_codes() {
        assert_eq!(alpha2_of("AUS"), Some("AU"));
        assert_eq!(alpha2_of("JPN"), Some("JP"));
        assert_eq!(alpha2_of("VNM"), Some("VN"));
        assert_eq!(alpha2_of("D<<"), Some("DE"));
        assert_eq!(alpha2_of("ZZZ"), None);
        assert_eq!(alpha2_of("AU"), None);
        assert_eq!(alpha2_of("ABW"), Some("AW"));
        assert_eq!(alpha2_of("ZWE"), Some("ZW"));
        // The layout the binary search relies on; every entry is found.
        let entries: Vec<&str> = COUNTRIES.split_ascii_whitespace().collect();
        assert_eq!(entries.len() * 6, COUNTRIES.len());
        assert!(entries.windows(2).all(|w| w[0][..3] < w[1][..3]));
        for e in entries {
            assert_eq!(e.len(), 5);
            assert_eq!(alpha2_of(&e[..3]), Some(&e[3..]), "{e}");
        }
    }

    #[test]
    fn dcc_history_and_entry_are_normalised_oldest_first() {
        let dcc = json!({"nam": {"fn": "Nguyễn", "gn": "Bảo Duy"}, "dob": "1983-10-10",
            "v": [{"dt": "2021-10-01", "mp": "EU/1/20/1528", "dn": 2, "sd": 2, "co": "VN"}]});
        let history = json!([{"dt": "2021-09-01", "mp": "EU/1/20/1528", "dn": 1, "sd": 2, "co": "VN"}]);
        let (h, v) = from_dcc(&dcc, Some(&history));
        assert_eq!(h.unwrap().name, "Nguyễn Bảo Duy");
        assert_eq!(v.iter().map(|d| d.date.as_str()).collect::<Vec<_>>(), ["2021-09-01", "2021-10-01"]);
        assert_eq!(v[1].dose, Some(2));
    }

    #[test]
    fn foreign_doses_are_numbered_and_shaped_like_a_dcc() {
        let mut v = vec![
            Vaccination {
                date: "2021-02-01".into(),
                product: "EU/1/20/1507".into(),
                dose: None,
                series: None,
                country: None,
            },
            Vaccination {
                date: "2021-01-01".into(),
                product: "EU/1/20/1507".into(),
                dose: None,
                series: None,
                country: None,
            },
        ];
        oldest_first(&mut v);
        fill_numbers(&mut v);
        assert_eq!((v[1].date.as_str(), v[1].dose, v[1].series), ("2021-02-01", Some(2), Some(2)));
        let holder = Holder { name: "John B. Anyperson".into(), dob: Some("1951-01-20".into()) };
        let p = dcc_shaped(Some(Format::Shc), None, Some(&holder), &v, Some("https://x")).unwrap();
        assert_eq!(p["nam"]["fn"], "Anyperson");
        assert_eq!(p["v"][0]["dn"], 2);
        assert_eq!(p["v"][0]["ma"], "ORG-100031184");
        assert_eq!(mp_of_cvx("208"), Some("EU/1/20/1528"));
        assert_eq!(mp_of_name("AstraZeneca Vaxzevria"), Some("EU/1/21/1529"));
    }
}
