//! `vaxpass pki …`: the Ministry's PKI officer's commands (SPEC §6).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use time::OffsetDateTime;

use crate::pki::{self as lib, CaFiles, Certificate, IssuedLog};

#[derive(Debug, Subcommand)]
pub(super) enum PkiCommand {
    /// Create the Ministry root CA: a self-signed key and certificate (keep it offline).
    #[command(after_long_help = "Example:\n  vaxpass pki init-root --out /secure/root\n\n\
        Writes DIR/key.pem (mode 0600) and DIR/cert.pem; never overwrites existing files.\n\n\
        With the root key in a token (SPEC §10), only DIR/cert.pem is written:\n  \
        vaxpass pki init-root --out /secure/root --issuer-key \\\n    \
        'pkcs11:token=MoH;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin'")]
    InitRoot {
        /// Directory to write key.pem and cert.pem into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Self-sign with this key instead of a new one: a PKCS#8 PEM file or a pkcs11: URI
        /// (a P-256 key pair is generated in the token if the label holds none).
        #[arg(long, value_name = "K")]
        issuer_key: Option<PathBuf>,
        /// Common name of the root.
        #[arg(long, value_name = "NAME", default_value = lib::DEFAULT_ROOT_CN)]
        cn: String,
        /// Validity in days.
        #[arg(long, value_name = "N", default_value_t = lib::DEFAULT_ROOT_DAYS)]
        days: u32,
    },
    /// Issue a provincial CA (Sở Y tế) under the root: CA with pathLen 0.
    #[command(after_long_help = "Example:\n  vaxpass pki issue-ca --issuer-key keys-example/root/key.pem \\\n    \
        --issuer-cert keys-example/root/cert.pem --province 79 --out ca-79")]
    IssueCa {
        #[command(flatten)]
        issuer: IssuerArgs,
        /// 2-digit GSO province code, e.g. 01 (Hà Nội) or 79 (Hồ Chí Minh).
        #[arg(long, value_name = "PP")]
        province: String,
        /// Directory for key.pem, cert.pem and chain.pem.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Validity in days.
        #[arg(long, value_name = "N", default_value_t = lib::DEFAULT_CA_DAYS)]
        days: u32,
    },
    /// Issue a facility Document Signer Certificate and its key (EKU vaccination).
    #[command(
        after_long_help = "Example:\n  vaxpass pki issue-facility --issuer-key keys-example/ca-01/key.pem \\\n    \
        --issuer-cert keys-example/ca-01/cert.pem --code 01002 --name 'Trạm Y tế Phường Phúc Xá' --out fac-01002\n\n\
        chain.pem holds the DSC followed by its issuer: give it to `vaxpass sign --chain`."
    )]
    IssueFacility {
        #[command(flatten)]
        issuer: IssuerArgs,
        /// Facility code (mã cơ sở KCB): 5 digits PPNNN.
        #[arg(long, value_name = "PPNNN")]
        code: String,
        /// Facility name, as it should appear in the certificate.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Directory for key.pem, cert.pem and chain.pem.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Validity in days (at most 730, SPEC §2).
        #[arg(long, value_name = "N", default_value_t = lib::MAX_FACILITY_DAYS)]
        days: u32,
        #[command(flatten)]
        record: RecordArgs,
    },
    /// A facility creates its own key and a certificate signing request for the Ministry.
    #[command(
        after_long_help = "Example:\n  vaxpass pki csr --code 01100 --name 'Trạm Y tế Xã A' --out my-station\n\n\
        Writes DIR/key.pem (0600, stays at the facility) and DIR/csr.pem (send to the Ministry).\n\n\
        With a token (SPEC §10), the key pair is generated inside it, non-extractable, and only csr.pem is written:\n  \
        vaxpass pki csr --code 01100 --name 'Trạm Y tế Xã A' --out my-station \\\n    \
        --key 'pkcs11:token=Station;object=dsc?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin'"
    )]
    Csr {
        /// Facility code (mã cơ sở KCB): 5 digits PPNNN.
        #[arg(long, value_name = "PPNNN")]
        code: String,
        /// Facility name.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Directory for key.pem and csr.pem.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Generate the key pair in a PKCS#11 token instead of a file: a pkcs11: URI whose
        /// object label holds no key yet.
        #[arg(long, value_name = "URI")]
        key: Option<String>,
        /// The token key's type (with --key).
        #[arg(long, value_enum, default_value_t = TokenKeyKind::P256, requires = "key")]
        key_type: TokenKeyKind,
    },
    /// Certify a facility's CSR as a DSC (the facility profile decides every extension).
    #[command(after_long_help = "Example:\n  vaxpass pki sign-csr --issuer-key keys-example/ca-01/key.pem \\\n    \
        --issuer-cert keys-example/ca-01/cert.pem --csr my-station/csr.pem --out my-station/cert.pem")]
    SignCsr {
        #[command(flatten)]
        issuer: IssuerArgs,
        /// The facility's csr.pem.
        #[arg(long, value_name = "FILE")]
        csr: PathBuf,
        /// Where to write the certificate (PEM); never overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Validity in days (at most 730).
        #[arg(long, value_name = "N", default_value_t = lib::MAX_FACILITY_DAYS)]
        days: u32,
        #[command(flatten)]
        record: RecordArgs,
    },
}

/// `pki csr --key-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum TokenKeyKind {
    /// ECDSA P-256 (ES256).
    P256,
    /// RSA-3072 (PS256).
    Rsa3072,
}

#[derive(Debug, Args)]
pub(super) struct IssuerArgs {
    /// The issuing CA's private key: PKCS#8 PEM, or a pkcs11: URI (SPEC §10).
    #[arg(long, value_name = "K")]
    issuer_key: PathBuf,
    /// The issuing CA's certificate (PEM or DER).
    #[arg(long, value_name = "C")]
    issuer_cert: PathBuf,
}

/// Where facility certificates are recorded, and the duplicate-code override.
#[derive(Debug, Args)]
pub(super) struct RecordArgs {
    /// The issuer's record of issued facility certificates (JSON lines, appended to).
    /// Default: issued.jsonl beside --issuer-cert.
    #[arg(long = "issued-log", value_name = "FILE")]
    issued_log: Option<PathBuf>,
    /// Issue even if the facility code already has a valid certificate in the record (key
    /// rollover; revoke the old one).
    #[arg(long = "allow-duplicate-code")]
    allow_duplicate_code: bool,
}

impl RecordArgs {
    /// Opens the record and refuses a facility code that already has a valid certificate.
    fn check(
        &self,
        issuer: &IssuerArgs,
        cert_pem: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<(IssuedLog, Certificate)> {
        let path = self.issued_log.clone().unwrap_or_else(|| IssuedLog::beside(&issuer.issuer_cert));
        let log = IssuedLog::open(&path)?;
        let cert = lib::parse_certificates(cert_pem.as_bytes(), true)?
            .into_iter()
            .next()
            .context("the issued certificate cannot be read back")?;
        if !self.allow_duplicate_code {
            let code = cert.facility_code.as_deref().unwrap_or_default();
            log.check_code(code, now.unix_timestamp())?;
        }
        Ok((log, cert))
    }
}

impl IssuerArgs {
    /// Loads the issuer, warning if its certificate expires soon.
    fn load(&self, now: OffsetDateTime) -> anyhow::Result<CaFiles> {
        let ca = CaFiles::load(&self.issuer_key, &self.issuer_cert)?;
        warn_expiry(ca.certificate(), now);
        Ok(ca)
    }
}

/// One stderr line when a certificate read or written expires within 90 days (issue 11 §4).
fn warn_expiry(cert: &Certificate, now: OffsetDateTime) {
    if let Some(line) = lib::expiry_warning(cert, now.unix_timestamp()) {
        eprintln!("{line}");
    }
}

/// Warns about a certificate just issued (its validity may have been cut to its issuer's).
fn warn_issued(cert_pem: &str, now: OffsetDateTime) {
    if let Some(cert) = lib::parse_certificates(cert_pem.as_bytes(), true).ok().and_then(|c| c.into_iter().next()) {
        warn_expiry(&cert, now);
    }
}

fn report(written: &[PathBuf]) -> anyhow::Result<ExitCode> {
    for p in written {
        eprintln!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn run(cmd: PkiCommand) -> anyhow::Result<ExitCode> {
    let now = OffsetDateTime::now_utc();
    match cmd {
        PkiCommand::InitRoot { out, cn, days, issuer_key } => {
            let issued = match issuer_key {
                None => lib::init_root(&cn, days, now)?,
                Some(key) => lib::init_root_with_key(&cn, days, now, &key)?,
            };
            warn_issued(&issued.cert_pem, now);
            report(&lib::write_issued(&out, &issued)?)
        }
        PkiCommand::IssueCa { issuer, province, out, days } => {
            let issued = lib::issue_ca(&issuer.load(now)?, &province, days, now)?;
            warn_issued(&issued.cert_pem, now);
            report(&lib::write_issued(&out, &issued)?)
        }
        PkiCommand::IssueFacility { issuer, code, name, out, days, record } => {
            let issued = lib::issue_facility(&issuer.load(now)?, &code, &name, days, now)?;
            warn_issued(&issued.cert_pem, now);
            let (mut log, cert) = record.check(&issuer, &issued.cert_pem, now)?;
            let written = lib::write_issued(&out, &issued)?;
            log.append(&cert)?;
            report(&written)
        }
        PkiCommand::Csr { code, name, out, key: Some(uri), key_type } => {
            let uri = lib::Pkcs11Uri::parse(&uri)?;
            std::fs::create_dir_all(&out).with_context(|| format!("{}: cannot create directory", out.display()))?;
            let csr_path = out.join("csr.pem");
            lib::ensure_absent(&[&csr_path])?;
            let kind = match key_type {
                TokenKeyKind::P256 => lib::TokenKeyType::EcP256,
                TokenKeyKind::Rsa3072 => lib::TokenKeyType::Rsa3072,
            };
            let csr = lib::make_token_csr(&code, &name, &uri, kind)?;
            lib::write_new_file(&csr_path, csr.as_bytes(), false)?;
            report(&[csr_path])
        }
        PkiCommand::Csr { code, name, out, key: None, .. } => {
            let (key, csr) = lib::make_csr(&code, &name)?;
            std::fs::create_dir_all(&out).with_context(|| format!("{}: cannot create directory", out.display()))?;
            let key_path = out.join("key.pem");
            let csr_path = out.join("csr.pem");
            lib::ensure_absent(&[&key_path, &csr_path])?;
            lib::write_new_file(&key_path, key.as_bytes(), true)?;
            lib::write_new_file(&csr_path, csr.as_bytes(), false)?;
            report(&[key_path, csr_path])
        }
        PkiCommand::SignCsr { issuer, csr, out, days, record } => {
            let issued = lib::sign_csr(&issuer.load(now)?, &csr, days, now)?;
            warn_issued(&issued.cert_pem, now);
            let (mut log, cert) = record.check(&issuer, &issued.cert_pem, now)?;
            lib::write_new_file(&out, issued.cert_pem.as_bytes(), false)?;
            log.append(&cert)?;
            report(&[out])
        }
    }
}
