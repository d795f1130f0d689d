//! The COVID-19 vaccines licensed for the Vietnamese passport and their EU DCC
//! value-set codes (DOMAIN §3; ehn-dcc-development/eu-dcc-valuesets 2.12.0).
//!
//! This module owns the table of the 8 products — the consistent
//! (`mp`, `ma`, `vp`) triple each passport carries and the primary-series
//! length — and the lookup of a product from what facility staff typed. It
//! knows nothing about rows, persons or dose series.
//!
//! Lookup matches whole normalised names only, never substrings: the
//! deprecated `Inactivated-SARS-CoV-2-Vero-Cell` code meant a different
//! (Wuhan) product and must not be taken for "Vero Cell" (BBIBP-CorV).

use unicode_normalization::UnicodeNormalization;

/// DCC `tg`: the disease targeted, SNOMED CT 840539006 (COVID-19), the same
/// for every product.
pub const DISEASE_COVID19: &str = "840539006";

/// One vaccine product with its EU DCC value-set codes (DOMAIN §3).
#[derive(Debug, PartialEq, Eq)]
pub struct Vaccine {
    /// The name used at Vietnamese vaccination facilities ("Vero Cell").
    pub local_name: &'static str,
    /// DCC `mp`: medicinal product (EU value set `vaccines-covid-19-names`).
    pub mp: &'static str,
    /// DCC `ma`: marketing authorisation holder or manufacturer (value set
    /// `vaccines-covid-19-auth-holders`).
    pub ma: &'static str,
    /// DCC `vp`: vaccine or prophylaxis type (value set `sct-vaccines-covid-19`).
    /// `J07BX03` is the code in force in 2021–22, the one Vietnam's sample uses.
    pub vp: &'static str,
    /// Doses in the primary series; DCC `sd` is at least this (SPEC §5).
    pub primary_series: u8,
}

/// The 8 products licensed for the Vietnamese passport (DOMAIN §3 table).
pub static VACCINES: [Vaccine; 8] = [
    Vaccine { local_name: "AstraZeneca", mp: "EU/1/21/1529", ma: "ORG-100001699", vp: "J07BX03", primary_series: 2 },
    Vaccine { local_name: "Pfizer", mp: "EU/1/20/1528", ma: "ORG-100030215", vp: "1119349007", primary_series: 2 },
    Vaccine { local_name: "Moderna", mp: "EU/1/20/1507", ma: "ORG-100031184", vp: "1119349007", primary_series: 2 },
    Vaccine { local_name: "Vero Cell", mp: "BBIBP-CorV", ma: "ORG-100020693", vp: "J07BX03", primary_series: 2 },
    Vaccine { local_name: "Hayat-Vax", mp: "Hayat-Vax", ma: "ORG-100023050", vp: "J07BX03", primary_series: 2 },
    Vaccine {
        local_name: "Sputnik V",
        mp: "Sputnik-V",
        ma: "Gamaleya-Research-Institute",
        vp: "J07BX03",
        primary_series: 2,
    },
    Vaccine { local_name: "Abdala", mp: "Abdala", ma: "CIGB", vp: "J07BX03", primary_series: 3 },
    Vaccine { local_name: "Janssen", mp: "EU/1/20/1525", ma: "ORG-100001417", vp: "J07BX03", primary_series: 1 },
];

/// Names facility staff type for each product, keyed by `mp` (DOMAIN §3):
/// local name, brand names, common spellings, development codes. The local
/// name and the `mp` code themselves always match and need not be listed.
/// Names of unlicensed products (Nanocovax, Covaxin, `CoronaVac`, Sputnik Light,
/// …) must never appear here.
const ALIASES: [(&str, &[&str]); 8] = [
    ("EU/1/21/1529", &["AstraZeneca", "Astra Zeneca", "Vaxzevria", "AZ", "ChAdOx1", "AZD1222"]),
    ("EU/1/20/1528", &["Pfizer", "Pfizer-BioNTech", "BioNTech", "Comirnaty", "BNT162b2"]),
    ("EU/1/20/1507", &["Moderna", "Spikevax", "mRNA-1273"]),
    ("BBIBP-CorV", &["Vero Cell", "Verocell", "Sinopharm", "Sinopharm Beijing"]),
    ("Hayat-Vax", &["Hayat Vax", "Hayatvax"]),
    ("Sputnik-V", &["Sputnik V", "Gam-COVID-Vac", "Gamaleya"]),
    ("Abdala", &["CIGB-66"]),
    ("EU/1/20/1525", &["Janssen", "Jcovden", "J&J", "Johnson & Johnson", "Johnson and Johnson", "Ad26.COV2.S"]),
];

/// Finds the product a facility typed, by local name, brand name, common
/// spelling or `mp` code (SPEC §3, DOMAIN §3).
///
/// Both sides are compared after NFKC (full-width letters), lowercasing and
/// removing white space, hyphens and dashes, dots, `&` and underscores; `/` is
/// kept, so the `EU/1/…` codes still match. Only whole names match: `None` for
/// anything else, including every product not licensed for the passport.
#[must_use]
pub fn lookup(typed: &str) -> Option<&'static Vaccine> {
    let key = match_key(typed);
    if key.is_empty() {
        return None;
    }
    index().get(key.as_str()).copied()
}

/// Every accepted spelling's key → product, built once: the gate looks up a vaccine for
/// every row, and normalising the ~40 aliases each time cost more than the rest of the row.
fn index() -> &'static std::collections::HashMap<String, &'static Vaccine> {
    static INDEX: std::sync::OnceLock<std::collections::HashMap<String, &'static Vaccine>> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut map = std::collections::HashMap::new();
        for vaccine in &VACCINES {
            for name in [vaccine.local_name, vaccine.mp].iter().chain(aliases(vaccine.mp)) {
                map.entry(match_key(name)).or_insert(vaccine);
            }
        }
        map
    })
}

/// The product whose DCC `mp` code is exactly `mp` (case and punctuation
/// included), as read from a passport.
#[must_use]
pub fn by_mp(mp: &str) -> Option<&'static Vaccine> {
    VACCINES.iter().find(|vaccine| vaccine.mp == mp)
}

/// The aliases listed for the product with code `mp` (empty if none).
fn aliases(mp: &str) -> &'static [&'static str] {
    ALIASES.iter().find(|(code, _)| *code == mp).map_or(&[], |(_, names)| *names)
}

/// The comparison key of a typed name: NFKC, lowercase, without white space,
/// hyphens and dashes, dots, `&` and underscores.
fn match_key(s: &str) -> String {
    if s.is_ascii() {
        // NFKC and Unicode lowercasing agree with ASCII lowercasing on ASCII.
        return s.chars().map(|c| c.to_ascii_lowercase()).filter(|&c| !is_ignored(c)).collect();
    }
    s.nfkc().flat_map(char::to_lowercase).filter(|&c| !is_ignored(c)).collect()
}

/// Characters that typing varies freely and that carry no meaning in a
/// product name.
fn is_ignored(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '.' | '&' | '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn assert_resolves(typed: &str, mp: &str) {
        assert_eq!(lookup(typed).map(|v| v.mp), Some(mp), "{typed:?}");
    }

    #[test]
    fn table_pins_the_eight_code_triples() {
        let triples: Vec<_> = VACCINES.iter().map(|v| (v.local_name, v.mp, v.ma, v.vp, v.primary_series)).collect();
        assert_eq!(
            triples,
            [
                ("AstraZeneca", "EU/1/21/1529", "ORG-100001699", "J07BX03", 2),
                ("Pfizer", "EU/1/20/1528", "ORG-100030215", "1119349007", 2),
                ("Moderna", "EU/1/20/1507", "ORG-100031184", "1119349007", 2),
                ("Vero Cell", "BBIBP-CorV", "ORG-100020693", "J07BX03", 2),
                ("Hayat-Vax", "Hayat-Vax", "ORG-100023050", "J07BX03", 2),
                ("Sputnik V", "Sputnik-V", "Gamaleya-Research-Institute", "J07BX03", 2),
                ("Abdala", "Abdala", "CIGB", "J07BX03", 3),
                ("Janssen", "EU/1/20/1525", "ORG-100001417", "J07BX03", 1),
            ]
        );
        assert_eq!(DISEASE_COVID19, "840539006");
    }

    #[test]
    fn every_product_has_an_alias_list_and_every_list_a_product() {
        for vaccine in &VACCINES {
            assert!(!aliases(vaccine.mp).is_empty(), "{}", vaccine.mp);
        }
        for (mp, _) in &ALIASES {
            assert!(by_mp(mp).is_some(), "{mp}");
        }
    }

    #[test]
    fn no_alias_names_two_products() {
        let mut seen = std::collections::HashMap::new();
        for vaccine in &VACCINES {
            let names = [vaccine.local_name, vaccine.mp].into_iter().chain(aliases(vaccine.mp).iter().copied());
            for name in names {
                if let Some(other) = seen.insert(match_key(name), vaccine.mp) {
                    assert_eq!(other, vaccine.mp, "{name:?}");
                }
            }
        }
    }

    #[test]
    fn every_listed_alias_resolves_to_its_product() {
        for vaccine in &VACCINES {
            assert_resolves(vaccine.local_name, vaccine.mp);
            assert_resolves(vaccine.mp, vaccine.mp);
            for alias in aliases(vaccine.mp) {
                assert_resolves(alias, vaccine.mp);
            }
        }
    }

    #[test]
    fn names_from_the_domain_table_resolve() {
        let cases = [
            ("AstraZeneca", "EU/1/21/1529"),
            ("Astra Zeneca", "EU/1/21/1529"),
            ("Vaxzevria", "EU/1/21/1529"),
            ("AZ", "EU/1/21/1529"),
            ("ChAdOx1", "EU/1/21/1529"),
            ("EU/1/21/1529", "EU/1/21/1529"),
            ("Pfizer", "EU/1/20/1528"),
            ("Pfizer-BioNTech", "EU/1/20/1528"),
            ("BioNTech", "EU/1/20/1528"),
            ("Comirnaty", "EU/1/20/1528"),
            ("EU/1/20/1528", "EU/1/20/1528"),
            ("Moderna", "EU/1/20/1507"),
            ("Spikevax", "EU/1/20/1507"),
            ("EU/1/20/1507", "EU/1/20/1507"),
            ("Vero Cell", "BBIBP-CorV"),
            ("Verocell", "BBIBP-CorV"),
            ("Sinopharm", "BBIBP-CorV"),
            ("BBIBP-CorV", "BBIBP-CorV"),
            ("Sinopharm Beijing", "BBIBP-CorV"),
            ("Hayat-Vax", "Hayat-Vax"),
            ("Hayat Vax", "Hayat-Vax"),
            ("Hayatvax", "Hayat-Vax"),
            ("Sputnik V", "Sputnik-V"),
            ("Sputnik-V", "Sputnik-V"),
            ("Gam-COVID-Vac", "Sputnik-V"),
            ("Gamaleya", "Sputnik-V"),
            ("Abdala", "Abdala"),
            ("CIGB-66", "Abdala"),
            ("Janssen", "EU/1/20/1525"),
            ("Jcovden", "EU/1/20/1525"),
            ("J&J", "EU/1/20/1525"),
            ("Johnson & Johnson", "EU/1/20/1525"),
            ("Johnson and Johnson", "EU/1/20/1525"),
            ("Ad26.COV2.S", "EU/1/20/1525"),
            ("EU/1/20/1525", "EU/1/20/1525"),
        ];
        for (typed, mp) in cases {
            assert_resolves(typed, mp);
        }
    }

    #[test]
    fn case_space_and_punctuation_variants_resolve() {
        assert_resolves("astrazeneca", "EU/1/21/1529");
        assert_resolves("  ASTRA-ZENECA ", "EU/1/21/1529");
        assert_resolves("Astra\u{a0}Zeneca", "EU/1/21/1529");
        assert_resolves("pfizer biontech", "EU/1/20/1528");
        assert_resolves("PFIZER_BIONTECH", "EU/1/20/1528");
        assert_resolves("vero-cell", "BBIBP-CorV");
        assert_resolves("VERO\tCELL", "BBIBP-CorV");
        assert_resolves("Hayat–Vax", "Hayat-Vax");
        assert_resolves("sputnikv", "Sputnik-V");
        assert_resolves("j & j", "EU/1/20/1525");
        assert_resolves("JJ", "EU/1/20/1525");
        assert_resolves("eu/1/20/1528", "EU/1/20/1528");
        assert_resolves("bbibp corv", "BBIBP-CorV");
    }

    #[test]
    fn full_width_letters_resolve() {
        assert_resolves("Ｍｏｄｅｒｎａ", "EU/1/20/1507");
        assert_resolves("ＶＥＲＯ　ＣＥＬＬ", "BBIBP-CorV");
    }

    #[test]
    fn unlicensed_products_are_unknown() {
        for typed in [
            "Nanocovax",
            "Covaxin",
            "CoronaVac",
            "Sinovac",
            "Sputnik Light",
            "Novavax",
            "Inactivated-SARS-CoV-2-Vero-Cell",
            "Covishield",
            "Sputnik",
            "Vero",
            "",
            "   ",
            "-",
            "EU/1/21/1618",
        ] {
            assert_eq!(lookup(typed), None, "{typed:?}");
        }
    }

    #[test]
    fn substrings_of_a_longer_name_do_not_match() {
        assert_eq!(lookup("Moderna booster"), None);
        assert_eq!(lookup("Pfizer Pfizer"), None);
        assert_eq!(lookup("EU/1/20/15280"), None);
    }

    #[test]
    fn by_mp_matches_exact_codes_only() {
        for vaccine in &VACCINES {
            assert_eq!(by_mp(vaccine.mp), Some(vaccine));
        }
        assert_eq!(by_mp("eu/1/20/1528"), None);
        assert_eq!(by_mp("Pfizer"), None);
        assert_eq!(by_mp("Inactivated-SARS-CoV-2-Vero-Cell"), None);
    }

    #[test]
    fn moderna_and_pfizer_are_mrna_the_rest_j07bx03() {
        for vaccine in &VACCINES {
            let mrna = matches!(vaccine.mp, "EU/1/20/1528" | "EU/1/20/1507");
            let expected = if mrna { "1119349007" } else { "J07BX03" };
            assert_eq!(vaccine.vp, expected, "{}", vaccine.mp);
        }
    }
}
