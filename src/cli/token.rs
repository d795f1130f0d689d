//! `vaxpass token`: the Ministry creates a facility's API token for station uploads.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use clap::Args;

use crate::store;

#[derive(Debug, Args)]
#[command(after_long_help = "Example:\n  vaxpass token --facility 01001 --db sqlite://vaxpass.db\n\n\
    Prints the token once; only its SHA-256 is stored. The facility sends it as\n\
    `Authorization: Bearer <token>` to POST /api/v1/batches and GET /api/v1/batches/{id}.")]
pub(super) struct TokenArgs {
    /// Facility code (mã cơ sở KCB), PPNNN.
    #[arg(long, value_name = "PPNNN")]
    facility: String,
    /// Database: sqlite://FILE or postgres://… (the service's).
    #[arg(long, value_name = "URL", default_value = store::DEFAULT_DB_URL, env = "VAXPASS_DB")]
    db: String,
}

pub(super) fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    if !crate::provinces::is_facility_code(&args.facility) {
        bail!("facility code {:?} is not 5 digits PPNNN with a known province code", args.facility);
    }
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow::anyhow!("no system randomness"))?;
    let token = format!("vxp_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let hash = crate::service::token_hash(&token);
    let mut store = store::open(&args.db).with_context(|| format!("opening the database {}", args.db))?;
    store.add_facility_token(&hash, &args.facility, time::OffsetDateTime::now_utc().unix_timestamp())?;
    super::write_stdout(format!("{token}\n").as_bytes())?;
    eprintln!("token for facility {} created; it is shown only now", args.facility);
    Ok(ExitCode::SUCCESS)
}
