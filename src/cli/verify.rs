//! `vaxpass verify`: the border official's command.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use std::process::ExitCode;

use clap::Args;
use time::OffsetDateTime;

use crate::pki::bundle::{self, TrustBundle};
use crate::pki::{Revocations, TrustStore};
use crate::verify::{ReasonCode, ShcDirectory, Verdict, Verifier};

#[derive(Debug, Args)]
#[command(after_long_help = "Examples:\n  \
    vaxpass verify --trust keys-example 'HC1:NCF…'\n  \
    vaxpass verify --trust-cert DE_DSC.der --at 2021-06-01T12:00:00Z --json < qr.txt\n  \
    vaxpass verify --trust-issuers issuers.json --json 'shc:/5676290952…'\n  \
    vaxpass verify --trust-cert AU_CSCA.pem --json < seal.json\n\n\
    The format is detected from the text: EU DCC (HC1:), SMART Health Card (shc:/), or an\n\
    ICAO VDS-NC seal (its JSON).\n\n\
    vaxpass verify --trust keys-example --rules rules/vn --at 2021-09-01T00:00:00Z --json 'HC1:NCF…'\n\n\
    With --rules, a valid passport also gets an entry decision (\"entry\": passed, failed or\n\
    open, with the rules that did not pass), evaluated at the --at clock.\n\n\
    Exit status: 0 valid, 1 not valid (the reason code says why), 2 usage or file error.")]
pub(super) struct VerifyArgs {
    /// Roots, intermediates and facility DSCs to chain (PEM or DER file, or a directory
    /// searched for *.pem/*.crt/*.cer/*.der). Repeatable.
    #[arg(long, value_name = "FILE|DIR")]
    trust: Vec<PathBuf>,
    /// Foreign trust material: for EU DCCs a signer certificate trusted as is, without a
    /// chain (the EU flat trust list model); for ICAO VDS-NC seals the country signing CA
    /// the seal's signer must chain to. DER, PEM (a bundle too) or an EU gateway trust-list
    /// export (JSON array of {kid, country, certificateType, rawData}). Repeatable.
    #[arg(long = "trust-cert", value_name = "FILE")]
    trust_cert: Vec<PathBuf>,
    /// Trusted SMART Health Card issuers: JSON {"participating_issuers": [{"iss", "name",
    /// "keys": [JWK…], "crls": [{"kid", "method": "rid", "ctr", "rids": […]}]}]}. Repeatable.
    #[arg(long = "trust-issuers", value_name = "FILE")]
    trust_issuers: Vec<PathBuf>,
    /// A signed trust list downloaded from GET /api/v1/trust-list: its signer and every
    /// certificate it carries must chain to a root given with --trust (it cannot add roots);
    /// its DSCs and revocations are then used. A list older than --trust-list-max-age, dated
    /// in the future, or older than one already used (see --state-dir) is refused.
    #[arg(long = "trust-list", value_name = "FILE")]
    trust_list: Option<PathBuf>,
    /// The oldest trust list accepted, as N followed by s, m, h or d (default 3d); a list
    /// dated more than 5 minutes after --at (or now) is refused too.
    #[arg(long = "trust-list-max-age", value_name = "AGE", default_value = "3d", value_parser = parse_age)]
    trust_list_max_age: i64,
    /// Where the highest trust-list version used is remembered.
    #[arg(long = "state-dir", value_name = "DIR", env = "VAXPASS_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Revocation list (JSON: passports by UVCI SHA-256, facilities by kid; see README).
    #[arg(long, value_name = "FILE")]
    revocations: Option<PathBuf>,
    /// Verify as of this time instead of now (RFC 3339, e.g. 2022-05-11T08:00:00Z).
    #[arg(long, value_name = "RFC3339", value_parser = super::parse_time)]
    at: Option<OffsetDateTime>,
    /// Entry rules (SPEC §9.2): an EU business-rule file, or a directory of rule and EU
    /// value-set files (Viet Nam's: rules/vn). A valid passport then gets an entry decision.
    #[arg(long, value_name = "FILE|DIR")]
    rules: Option<PathBuf>,
    /// The arrival country whose acceptance rules apply (ISO 3166 alpha-2).
    #[arg(long, value_name = "CC", default_value = "VN", value_parser = parse_country)]
    country: String,
    /// Print one JSON object (SPEC §6) instead of the human summary.
    #[arg(long)]
    json: bool,
    /// The QR text (HC1:…, shc:/…, or a VDS-NC seal's JSON); read from standard input when
    /// absent or `-`.
    qr_text: Option<String>,
}

pub(super) fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let mut trust = TrustStore::new();
    for p in &args.trust {
        trust.load_trusted(p)?;
    }
    for p in &args.trust_cert {
        trust.load_pinned(p)?;
    }
    let mut revocations = match &args.revocations {
        Some(p) => Revocations::load(p)?,
        None => Revocations::default(),
    };
    let at = args.at.unwrap_or_else(OffsetDateTime::now_utc);
    if let Some(list) = &args.trust_list {
        let bundle =
            load_trust_list(list, args.state_dir.clone(), &trust, at.unix_timestamp(), args.trust_list_max_age)?;
        trust.add_trusted(bundle.roots.into_iter().chain(bundle.intermediates).chain(bundle.dscs).collect());
        revocations.merge(&bundle.revocations);
    }
    let rules = match &args.rules {
        Some(p) => Some(crate::rules::RuleSet::load(p)?),
        None => None,
    };
    let no_trust = trust.signers().is_empty();
    let mut issuers = ShcDirectory::default();
    for p in &args.trust_issuers {
        issuers.merge(ShcDirectory::load(p)?);
    }
    let verifier = Verifier::new(trust, revocations).with_issuers(issuers);
    let text = super::qr_text_arg(args.qr_text)?;
    let mut verdict = verifier.verify(&text, at);
    if let Some(rules) = &rules {
        verdict.check_entry(rules, &args.country, at);
    }
    if args.json {
        let mut line = serde_json::to_vec(&verdict)?;
        line.push(b'\n');
        super::write_stdout(&line)?;
    } else {
        let mut s = human(&verdict);
        if no_trust && verdict.reason == ReasonCode::KeyNotInTrustList {
            s.push_str("hint: no signer is trusted; pass --trust DIR (e.g. keys-example) or --trust-cert FILE\n");
        }
        super::write_stdout(s.as_bytes())?;
    }
    Ok(if verdict.valid { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `--country`: two capital letters.
fn parse_country(s: &str) -> Result<String, String> {
    let upper = s.to_ascii_uppercase();
    if upper.len() == 2 && upper.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(upper)
    } else {
        Err("expected an ISO 3166 alpha-2 country code such as VN".into())
    }
}

/// `--trust-list-max-age`: `N` plus a unit (s, m, h, d), at most a year.
fn parse_age(s: &str) -> Result<i64, String> {
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err("expected N followed by s, m, h or d (e.g. 72h, 3d)".into()),
    };
    let n: i64 = n.parse().map_err(|_| "expected N followed by s, m, h or d (e.g. 72h, 3d)".to_owned())?;
    match n.checked_mul(scale) {
        Some(secs) if (1..=366 * 86_400).contains(&secs) => Ok(secs),
        _ => Err("must be between 1 s and 366 d".into()),
    }
}

/// Opens a signed trust list at `at` against the roots already trusted, refusing a stale or
/// future list and a rollback, and remembers its version.
fn load_trust_list(
    path: &Path,
    state_dir: Option<PathBuf>,
    trust: &TrustStore,
    at: i64,
    max_age: i64,
) -> anyhow::Result<TrustBundle> {
    let state_dir = state_dir
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/vaxpass")))
        .unwrap_or_else(|| PathBuf::from(".vaxpass-state"));
    let state = state_dir.join("trust-list-version");
    let have = std::fs::read_to_string(&state).ok().and_then(|s| s.trim().parse::<u64>().ok());
    // Versions are bounded by issue times now; a remembered one beyond the clock can only
    // come from a list accepted before that bound (2^64-1 pinned devices), so it is dropped
    // and overwritten by the next list rather than refusing every list for ever.
    let limit = u64::try_from(at.saturating_add(bundle::MAX_CLOCK_SKEW_SECS)).unwrap_or(0);
    let have = have.filter(|&h| h <= limit);
    let bytes = crate::pki::read_file(path)?;
    let bundle =
        bundle::open(&bytes, trust, at, have, max_age).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if have.is_none_or(|h| bundle.version > h) {
        std::fs::create_dir_all(&state_dir).with_context(|| format!("{}: cannot create", state_dir.display()))?;
        std::fs::write(&state, format!("{}\n", bundle.version))
            .with_context(|| format!("{}: cannot write", state.display()))?;
    }
    Ok(bundle)
}

/// The human summary: verdict and reason first, then who and what.
fn human(v: &Verdict) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    if v.valid {
        let _ = writeln!(s, "VALID");
    } else {
        let _ = writeln!(s, "NOT VALID: {}", v.reason);
        if let Some(d) = &v.detail {
            let _ = writeln!(s, "  why:     {d}");
        }
    }
    if let Some(format) = v.format {
        let name = match format {
            crate::verify::Format::Dcc => "EU DCC",
            crate::verify::Format::Shc => "SMART Health Card",
            crate::verify::Format::VdsNc => "ICAO VDS-NC",
        };
        let _ = writeln!(s, "  format:  {name}");
    }
    if let Some(h) = &v.holder {
        let _ = writeln!(s, "  name:    {}", h.name);
        if let Some(dob) = &h.dob {
            let _ = writeln!(s, "  born:    {dob}");
        }
    }
    for d in &v.vaccinations {
        let number = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
        let _ = writeln!(s, "  dose:    {}/{} {} {}", number(d.dose), number(d.series), d.date, d.product);
    }
    if let Some(uvci) = v.uvci() {
        let _ = writeln!(s, "  uvci:    {uvci}");
    }
    if let Some(entry) = &v.entry {
        let result = serde_json::to_value(entry.result).ok();
        let _ = writeln!(s, "  entry:   {}", result.as_ref().and_then(|r| r.as_str()).unwrap_or("?").to_uppercase());
        for rule in &entry.failed {
            let _ = writeln!(s, "  {:>8} {} {}", "", rule.identifier, rule.description.en);
        }
    }
    if let Some(signer) = &v.signer {
        let _ = writeln!(s, "  signer:  {} (kid {})", signer.subject, signer.kid);
        for (i, subject) in signer.chain.iter().enumerate().skip(1) {
            let _ = writeln!(s, "  {:>8} {subject}", if i == 1 { "chain:" } else { "" });
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::Cli;

    #[test]
    fn rules_and_country_parse() {
        let ok = Cli::try_parse_from(["vaxpass", "verify", "--rules", "rules/vn", "--country", "de", "HC1:X"]);
        assert!(format!("{:?}", ok.unwrap()).contains("country: \"DE\""));
        assert!(Cli::try_parse_from(["vaxpass", "verify", "--country", "VNM", "HC1:X"]).is_err());
        assert!(Cli::try_parse_from(["vaxpass", "verify", "--country", "V1", "HC1:X"]).is_err());
    }
}
