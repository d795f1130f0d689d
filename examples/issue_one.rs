//! Issues one demonstration passport with the development facility keys-example/facility-01001
//! and prints its `HC1:` text. Used by scripts/demo; never use keys-example in production.

use std::path::Path;

use vaxpass::passport::{self, Algorithm, Dose, PassportContent, Person, Uvci, number_doses, vaccines};
use vaxpass::pki::{SigningKey, parse_certificates};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example/facility-01001");
    let key = SigningKey::load(&dir.join("key.pem"))?;
    let dsc = parse_certificates(&std::fs::read(dir.join("cert.pem"))?, true)?.into_iter().next().ok_or("no cert")?;
    let dose = |name: &str, date| -> Result<Dose, String> {
        Ok(Dose { vaccine: vaccines::lookup(name).ok_or(format!("unknown vaccine {name}"))?, date })
    };
    let doses = [
        dose("AstraZeneca", time::macros::date!(2021 - 07 - 15))?,
        dose("AstraZeneca", time::macros::date!(2021 - 09 - 30))?,
        dose("Pfizer", time::macros::date!(2022 - 01 - 20))?,
    ];
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let not_after = dsc.validity.map_or(i64::MAX, |v| v.1);
    let content = PassportContent {
        person: Person { full_name: "Nguyễn Thị Ngọc Ánh".into(), dob: "1985-03-04".into() },
        doses: number_doses(&doses),
        issuer: "Ministry of Health Viet Nam".into(),
        uvci: Uvci::new("01001", "DEM0DEM0DEM0DEM0")?,
        issued_at: now,
        // Default lifetime 365 days, never past the DSC's notAfter (SPEC §3).
        expires_at: (now + 365 * 86_400).min(not_after),
        include_history: true,
    };
    let text = passport::sign(&content, Algorithm::Es256, &dsc.kid.0, |m| key.sign(m))?.ok_or("no dose")?;
    println!("{text}");
    Ok(())
}
