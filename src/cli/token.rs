//! `vaxpass token`: the Ministry creates a facility's API token for station uploads, or
//! revokes tokens.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use clap::Args;

use crate::store::{self, TokenSelector};

#[derive(Debug, Args)]
#[command(after_long_help = "Examples:\n  \
    vaxpass token --facility 01001 --days 90 --db sqlite://vaxpass.db\n  \
    vaxpass token --revoke vxp_… --db sqlite://vaxpass.db\n  \
    vaxpass token --revoke-facility 01001 --db sqlite://vaxpass.db\n\n\
    A new token is printed once; only its SHA-256 is stored. The facility sends it as\n\
    `Authorization: Bearer <token>` to POST /api/v1/batches and GET /api/v1/batches/{id}. Tokens expire\n\
    after --days, and stop working at once when revoked here, through POST /api/v1/tokens/revoke, or when\n\
    the facility's certificate is revoked.")]
pub(super) struct TokenArgs {
    /// Create a token for this facility code (mã cơ sở KCB), PPNNN.
    #[arg(long, value_name = "PPNNN", required_unless_present_any = ["revoke", "revoke_facility"])]
    facility: Option<String>,
    /// Days until the new token expires.
    #[arg(long, value_name = "N", default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    days: u32,
    /// Revoke this token.
    #[arg(long, value_name = "TOKEN", conflicts_with_all = ["facility", "revoke_facility"])]
    revoke: Option<String>,
    /// Revoke every token of this facility.
    #[arg(long, value_name = "PPNNN", conflicts_with = "facility")]
    revoke_facility: Option<String>,
    /// Database: sqlite://FILE or postgres://… (the service's).
    #[arg(long, value_name = "URL", default_value = store::DEFAULT_DB_URL, env = "VAXPASS_DB")]
    db: String,
}

fn check_code(code: &str) -> anyhow::Result<()> {
    if !crate::provinces::is_facility_code(code) {
        bail!("facility code {code:?} is not 5 digits PPNNN with a known province code");
    }
    Ok(())
}

pub(super) fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let open = || store::open(&args.db).with_context(|| format!("opening the database {}", args.db));
    if let Some(token) = &args.revoke {
        let n = open()?.revoke_tokens(TokenSelector::Hash(&crate::service::token_hash(token)), now)?;
        eprintln!("{n} token revoked");
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(code) = &args.revoke_facility {
        check_code(code)?;
        let n = open()?.revoke_tokens(TokenSelector::Facility(code), now)?;
        eprintln!("{n} tokens of facility {code} revoked");
        return Ok(ExitCode::SUCCESS);
    }
    let facility = args.facility.as_deref().unwrap_or_default();
    check_code(facility)?;
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow::anyhow!("no system randomness"))?;
    let token = format!("vxp_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let hash = crate::service::token_hash(&token);
    let expires = now + i64::from(args.days) * 86_400;
    open()?.add_facility_token(&hash, facility, now, Some(expires))?;
    super::write_stdout(format!("{token}\n").as_bytes())?;
    eprintln!("token for facility {facility} created, valid {} days; it is shown only now", args.days);
    Ok(ExitCode::SUCCESS)
}
