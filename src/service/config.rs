//! `vaxpass serve` configuration: a TOML file, then `VAXPASS_*` environment variables, then
//! command-line flags, each overriding the one before. The defaults are SPEC §7's: listen on
//! 127.0.0.1:8080, SQLite `vaxpass.db` in the working directory, the `keys-example/`
//! hierarchy.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Service settings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Database URL: `sqlite://FILE` or `postgres://…`.
    pub db: String,
    /// The hierarchy: `root/cert.pem` (trusted), `ca-*/cert.pem`, `facility-*/cert.pem`.
    pub keys: PathBuf,
    /// The deployment secret (see `vaxpass sign --secret`); created if missing.
    pub secret: PathBuf,
    /// The population registry extract that uploaded batches are checked against; without
    /// it, only the offline checks run.
    pub registry: Option<PathBuf>,
    /// SHA-256 (hex) of the Ministry's admin token; `VAXPASS_ADMIN_TOKEN` gives the token
    /// itself instead. Without either, the admin routes answer 401 to everyone.
    pub admin_token_sha256: Option<String>,
    /// Trust-list signing key (a PKCS#8 PEM path or a `pkcs11:` URI, SPEC §10) and
    /// certificate (chained to the root). When absent and
    /// `keys/root/key.pem` exists (the development hierarchy), a short-lived signer is
    /// issued from it at start-up.
    pub trust_list_key: Option<PathBuf>,
    /// See `trust_list_key`.
    pub trust_list_cert: Option<PathBuf>,
    /// Facility signing keys held elsewhere than `keys/facility-CODE/key.pem`, by facility
    /// code: a PKCS#8 PEM path or a `pkcs11:` URI (SPEC §10), e.g.
    /// `"01001" = "pkcs11:token=BachMai;object=dsc?module-path=…&pin-source=file:/run/pin"`.
    /// The certificate stays `keys/facility-CODE/cert.pem`.
    pub facility_keys: std::collections::BTreeMap<String, String>,
    /// Foreign trust material for `POST /api/v1/verify`, as `verify --trust-cert` takes it:
    /// pinned EU DSCs (DER, PEM bundle or gateway trust-list export) and VDS-NC CSCAs.
    pub trust_certs: Vec<PathBuf>,
    /// Trusted SMART Health Card issuer directories, as `verify --trust-issuers` takes them.
    pub trust_issuers: Vec<PathBuf>,
    /// Largest request body in bytes (photos of QR codes are the largest).
    pub max_body_bytes: usize,
    /// Seconds before a request is answered 408 (every route but the uploads).
    pub request_timeout_secs: u64,
    /// Seconds an upload (`POST /api/v1/batches`, a photo to `POST /api/v1/verify`) may take,
    /// body included. A commune's link may give 30 KB/s: an 8 MB `doses.csv` then needs
    /// ~270 s; the small routes keep `request_timeout_secs`.
    pub upload_timeout_secs: u64,
    /// Milliseconds a connection may take to send a request's headers, and may stay idle
    /// between requests, before it is closed (slow or idle connections hold a file
    /// descriptor each).
    pub header_read_timeout_ms: u64,
    /// Connections served at once; further clients wait in the listen queue until one ends.
    /// Keep it below the process's file limit (`ulimit -n`, often 1,024), which the
    /// database, the batch threads and the log also draw on.
    pub max_connections: usize,
    /// Reverse proxies whose `X-Forwarded-For` is believed: for a request from one of these
    /// addresses, the client is the rightmost address of that header that is not itself a
    /// trusted proxy. Empty (the default): the header is ignored and the peer address is the
    /// client.
    pub trusted_proxies: Vec<IpAddr>,
    /// Minimum time, in milliseconds, of a traveller lookup answer, so that wrong and absent
    /// data take the same time as a match.
    pub lookup_floor_ms: u64,
    /// Lookups allowed per client address per minute.
    pub lookups_per_client_per_minute: u32,
    /// Failed lookups allowed per identity number and client address per hour; after that,
    /// that client gets 429 for that identity number, while other clients are not affected.
    pub lookups_per_identity_per_hour: u32,
    /// Failed lookups of one identity number (all clients) per hour after which every
    /// lookup of it waits `lookup_slowdown_ms`: it slows a distributed guesser down while a
    /// traveller with the right data still gets the answer.
    pub identity_failures_before_slowdown: u32,
    /// Minimum time, in milliseconds, of a lookup of an identity number under attack (see
    /// `identity_failures_before_slowdown`).
    pub lookup_slowdown_ms: u64,
    /// SHA-256 (hex) of the token that `GET /metrics` requires (`Authorization: Bearer`);
    /// `VAXPASS_METRICS_TOKEN` gives the token itself instead. Without it (and without
    /// `metrics_listen`), `/metrics` answers 401.
    pub metrics_token_sha256: Option<String>,
    /// A separate address (e.g. on the operators' network) serving `GET /metrics` and
    /// `GET /healthz` without a token; `/metrics` is then not served on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// Entry rules (SPEC §9.2) evaluated for every valid passport `POST /api/v1/verify`
    /// answers: an EU business-rule file, or a directory of rule and EU value-set files.
    /// Absent: Viet Nam's entry rules as shipped in `rules/vn` (built into the binary).
    pub rules: Option<PathBuf>,
    /// The arrival country whose acceptance rules apply (ISO 3166 alpha-2).
    pub rules_country: String,
    /// Whether verdicts carry an entry decision at all.
    pub entry_rules: bool,
    /// Seconds a station upload's lease lasts: the instance signing it renews the lease every
    /// third of this, and any instance marks a running batch whose lease ended `failed` (its
    /// instance stopped), checking every third of this. The instances' clocks must agree to
    /// well within it.
    pub batch_lease_secs: u64,
    /// PostgreSQL connections the requests share (at least 1; SQLite always has one). Each
    /// is owned by a thread that takes the next waiting request's store work, so a slow
    /// query holds one connection, not every request behind it.
    pub store_connections: usize,
    /// The service's clock (not configurable: tests set it, see [`Clock`]).
    #[serde(skip)]
    pub clock: Clock,
}

/// Where the service reads the time: the system clock shifted by a fixed offset, zero in
/// production. Tests start it at a fixed date, so that they pass whatever the machine's date
/// (issue 11 item 4: keys-example's facility certificates expire in 2028), while it still
/// advances as durations pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    offset: time::Duration,
}

impl Clock {
    /// A clock that reads `start` now.
    pub fn starting_at(start: time::OffsetDateTime) -> Clock {
        Clock { offset: start - time::OffsetDateTime::now_utc() }
    }

    /// The current time.
    pub fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc() + self.offset
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            db: crate::store::DEFAULT_DB_URL.to_owned(),
            keys: PathBuf::from("keys-example"),
            secret: PathBuf::from("vaxpass.secret"),
            registry: None,
            admin_token_sha256: None,
            trust_list_key: None,
            trust_list_cert: None,
            facility_keys: Default::default(),
            trust_certs: Vec::new(),
            trust_issuers: Vec::new(),
            max_body_bytes: 8 * 1024 * 1024,
            request_timeout_secs: 10,
            upload_timeout_secs: 300,
            header_read_timeout_ms: 10_000,
            max_connections: 512,
            trusted_proxies: Vec::new(),
            lookup_floor_ms: 300,
            lookups_per_client_per_minute: 10,
            lookups_per_identity_per_hour: 10,
            identity_failures_before_slowdown: 50,
            lookup_slowdown_ms: 3_000,
            metrics_token_sha256: None,
            metrics_listen: None,
            rules: None,
            rules_country: "VN".to_owned(),
            entry_rules: true,
            batch_lease_secs: 30,
            store_connections: 4,
            clock: Clock::default(),
        }
    }
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause (in the message, not `source()`, so it prints once).
        cause: std::io::Error,
    },
    /// The file is not valid configuration.
    #[error("{path}: {message}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An environment variable has a bad value.
    #[error("{name}: {message}")]
    Env {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads `path` (if given) over the defaults, then applies `env` (name → value).
    pub fn load(path: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|source| ConfigError::Io { path: p.to_owned(), cause: source })?;
                toml::from_str(&text).map_err(|e| ConfigError::Toml { path: p.to_owned(), message: e.to_string() })?
            }
            None => Config::default(),
        };
        if let Some(v) = env("VAXPASS_LISTEN") {
            config.listen =
                v.parse().map_err(|e| ConfigError::Env { name: "VAXPASS_LISTEN", message: format!("{e}") })?;
        }
        if let Some(v) = env("VAXPASS_DB") {
            config.db = v;
        }
        if let Some(v) = env("VAXPASS_KEYS") {
            config.keys = v.into();
        }
        if let Some(v) = env("VAXPASS_SECRET") {
            config.secret = v.into();
        }
        if let Some(v) = env("VAXPASS_REGISTRY") {
            config.registry = Some(v.into());
        }
        if let Some(v) = env("VAXPASS_RULES") {
            config.rules = Some(v.into());
        }
        if let Some(token) = env("VAXPASS_ADMIN_TOKEN") {
            config.admin_token_sha256 = Some(sha256_hex(token.as_bytes()));
        }
        if let Some(token) = env("VAXPASS_METRICS_TOKEN") {
            config.metrics_token_sha256 = Some(sha256_hex(token.trim().as_bytes()));
        }
        Ok(config)
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_specs() {
        let c = Config::load(None, |_| None).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.db, "sqlite://vaxpass.db");
        assert_eq!(c.keys, PathBuf::from("keys-example"));
        assert_eq!((c.rules, c.rules_country.as_str(), c.entry_rules), (None, "VN", true));
    }

    #[test]
    fn file_then_environment_override() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vaxpass.toml");
        std::fs::write(&p, "listen = \"0.0.0.0:9000\"\ndb = \"postgres://db/x\"\n").unwrap();
        let c = Config::load(Some(&p), |k| (k == "VAXPASS_DB").then(|| "sqlite://other.db".to_owned())).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.db, "sqlite://other.db");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, "lisen = \"x\"\n").unwrap();
        let e = Config::load(Some(&p), |_| None).unwrap_err().to_string();
        assert!(e.contains("bad.toml") && e.contains("lisen"), "{e}");
        let e = Config::load(None, |k| (k == "VAXPASS_LISTEN").then(|| "nowhere".to_owned())).unwrap_err();
        assert!(e.to_string().starts_with("VAXPASS_LISTEN:"));
    }
}
