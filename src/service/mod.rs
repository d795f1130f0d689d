//! The vaxpass service (SPEC §7): axum router, shared state, authentication, rate limits, one
//! file per route group. Handlers extract, call the library and map errors; CPU- and
//! database-bound work runs in `spawn_blocking`.

mod batches;
mod config;
mod corrections;
mod error;
mod metrics;
mod ops;
mod pages;
mod passports;
mod records;
mod revocations;
mod tokens;
mod trust_list;
mod verify;

pub use config::{Clock, Config, ConfigError, sha256_hex};
pub use error::ApiError;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use time::OffsetDateTime;

use crate::gate::DerivationKey;
use crate::pki::{self, CaFiles, Kid, Revocations, SigningKey, TrustStore};
use crate::store::{self, Revocation, Store};
use crate::verify::Verifier;

/// Station uploads signed at once by one instance; more get 429 (signing takes every core).
pub const MAX_RUNNING_BATCHES: usize = 2;

/// How often an instance on SQLite re-reads revocations made through other instances.
pub const REVOCATION_REFRESH: Duration = Duration::from_secs(1);

/// How often an instance on PostgreSQL re-reads revocations anyway: a notification
/// (`LISTEN`/`NOTIFY`) brings each one within milliseconds; this is the safety net for one
/// lost while the listening connection was down (it also re-reads on reconnecting).
pub const REVOCATION_SAFETY_REFRESH: Duration = Duration::from_secs(30);

/// How often expired rate-limit counters are deleted from PostgreSQL.
const COUNTER_SWEEP: Duration = Duration::from_secs(60);

/// Time given to requests in flight once a stop is asked for; then the process ends whatever
/// still runs (the orchestrator's SIGKILL usually follows SIGTERM after 30 s).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Pause after an accept error such as `EMFILE` (no file descriptor left): retrying at once
/// would spin a core while nothing can be accepted; connections ending free descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Longest request-derived text put in a log line.
const MAX_LOGGED_CHARS: usize = 64;

/// State shared by every request.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    config: Config,
    store: StoreThread,
    /// A connection for batch leases (renewals, expiry checks): their writes wait for a
    /// running batch's chunk transaction on SQLite, and must not hold the request store
    /// thread (and every lookup behind it) meanwhile.
    lease_store: StoreThread,
    verifier: RwLock<Arc<Verifier>>,
    revocation_version: std::sync::atomic::AtomicU64,
    secret: DerivationKey,
    registry: Option<Arc<crate::gate::Registry>>,
    admin_token_hash: Option<[u8; 32]>,
    metrics_token_hash: Option<[u8; 32]>,
    list_signer: Option<(SigningKey, String)>,
    metrics: metrics::Metrics,
    limits: Limits,
    /// This instance's name in batch leases: random, so a restarted instance is another.
    instance_id: String,
    /// Photo decodes allowed at once (one per core): each may hold 64 MB for ~30 ms. A slot
    /// is held until the decode really ends, not until its request does.
    photo_slots: Arc<tokio::sync::Semaphore>,
    /// Station uploads signing at once.
    batch_slots: Arc<tokio::sync::Semaphore>,
    /// A fixed clock (Unix seconds) a test set, or [`SYSTEM_CLOCK`] for [`Config::clock`].
    clock: std::sync::atomic::AtomicI64,
    /// The entry rules verdicts are checked against (SPEC §9.2), unless switched off.
    rules: Option<crate::rules::RuleSet>,
}

/// [`Shared::clock`] when the service reads [`Config::clock`].
const SYSTEM_CLOCK: i64 = i64::MIN;

/// Where the rate limits count: in this process (SQLite, one instance), or in PostgreSQL,
/// so that N instances on one database allow each limit once, not N times.
enum Limits {
    Memory(Mutex<RateLimits>),
    Shared(CounterThread),
}

/// Attempt counters, each with its own window.
#[derive(Default)]
struct RateLimits {
    entries: HashMap<String, (Instant, Duration, u32)>,
    last_sweep: Option<Instant>,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A key, certificate or secret file.
    #[error(transparent)]
    File(#[from] pki::FileError),
    /// The trust-list key (a file or a PKCS#11 token key).
    #[error(transparent)]
    Key(#[from] pki::KeyError),
    /// Issuing the development trust-list signer.
    #[error(transparent)]
    Issue(#[from] pki::IssueError),
    /// The database.
    #[error("database")]
    Store(#[from] store::StoreError),
    /// Bad admin token hash.
    #[error("admin_token_sha256 is not 64 hex digits")]
    AdminHash,
    /// Bad metrics token hash.
    #[error("metrics_token_sha256 is not 64 hex digits")]
    MetricsHash,
    /// The store thread could not start or stopped.
    #[error("the database thread: {0}")]
    StoreThread(String),
    /// The revocations could not be read.
    #[error("reading the revocations")]
    Revocations(#[source] ApiError),
    /// The entry rules could not be loaded.
    #[error("entry rules")]
    Rules(#[from] crate::rules::RuleError),
}

impl AppState {
    /// Opens the store, loads the hierarchy and the deployment secret. Blocking.
    pub fn open(config: Config, now: OffsetDateTime) -> Result<AppState, StartError> {
        let store = StoreThread::open(&config.db, config.store_connections)?;
        let lease_store = StoreThread::open(&config.db, 1)?;
        let limits = if store::is_postgres(&config.db) {
            Limits::Shared(CounterThread::open(&config.db)?)
        } else {
            Limits::Memory(Mutex::new(RateLimits::default()))
        };
        let mut trust = TrustStore::new();
        trust.load_trusted(&config.keys)?;
        for p in &config.trust_certs {
            trust.load_pinned(p)?;
        }
        let mut issuers = crate::verify::ShcDirectory::default();
        for p in &config.trust_issuers {
            issuers.merge(crate::verify::ShcDirectory::load(p)?);
        }
        let (secret, _) = DerivationKey::load_or_create(&config.secret)?;
        let registry = match &config.registry {
            Some(path) => {
                let file =
                    std::fs::File::open(path).map_err(|cause| pki::FileError::Io { path: path.clone(), cause })?;
                Some(Arc::new(
                    crate::gate::Registry::load(std::io::BufReader::new(file), &path.display().to_string())
                        .map_err(|e| pki::FileError::content(path, e.to_string()))?,
                ))
            }
            None => None,
        };
        let admin_token_hash = match &config.admin_token_sha256 {
            None => None,
            Some(hex) => Some(pki::unhex32(hex).ok_or(StartError::AdminHash)?),
        };
        let metrics_token_hash = match &config.metrics_token_sha256 {
            None => None,
            Some(hex) => Some(pki::unhex32(hex).ok_or(StartError::MetricsHash)?),
        };
        let list_signer = match (&config.trust_list_key, &config.trust_list_cert) {
            (Some(k), Some(c)) => {
                Some((SigningKey::open(k)?, String::from_utf8_lossy(&pki::read_file(c)?).into_owned()))
            }
            _ => {
                let root = config.keys.join("root");
                if root.join("key.pem").exists() {
                    // Development hierarchy: issue a short-lived signer from its root.
                    let ca = CaFiles::load(&root.join("key.pem"), &root.join("cert.pem"))?;
                    let issued = pki::issue_trust_list_signer(&ca, 30, now)?;
                    // It generates the key it certifies, so the key is always there.
                    #[allow(clippy::expect_used)]
                    let key_pem = issued.key_pem.expect("a newly issued signer comes with its key");
                    Some((SigningKey::from_pem(&root.join("(generated)"), key_pem.as_bytes())?, issued.cert_pem))
                } else {
                    None
                }
            }
        };
        let rules = match (&config.rules, config.entry_rules) {
            (_, false) => None,
            (Some(path), true) => Some(crate::rules::RuleSet::load(path)?),
            (None, true) => Some(crate::rules::RuleSet::viet_nam()),
        };
        let state = AppState {
            inner: Arc::new(Shared {
                config,
                store,
                lease_store,
                verifier: RwLock::new(Arc::new(Verifier::new(trust, Revocations::default()).with_issuers(issuers))),
                revocation_version: Default::default(),
                secret,
                registry,
                admin_token_hash,
                metrics_token_hash,
                list_signer,
                metrics: metrics::Metrics::default(),
                limits,
                instance_id: random_hex::<8>().ok_or_else(|| StartError::StoreThread("no randomness".into()))?,
                photo_slots: Arc::new(tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
                )),
                batch_slots: Arc::new(tokio::sync::Semaphore::new(MAX_RUNNING_BATCHES)),
                clock: std::sync::atomic::AtomicI64::new(SYSTEM_CLOCK),
                rules,
            }),
        };
        state.refresh_revocations().map_err(StartError::Revocations)?;
        Ok(state)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Fixes the service's clock at `at` (tests), or returns it to [`Config::clock`] with
    /// `None`.
    pub fn set_clock(&self, at: Option<OffsetDateTime>) {
        let at = at.map_or(SYSTEM_CLOCK, OffsetDateTime::unix_timestamp);
        self.inner.clock.store(at, std::sync::atomic::Ordering::Relaxed);
    }

    /// The service's current time: [`Config::clock`], unless fixed by [`AppState::set_clock`].
    pub fn now(&self) -> OffsetDateTime {
        match self.inner.clock.load(std::sync::atomic::Ordering::Relaxed) {
            SYSTEM_CLOCK => self.inner.config.clock.now(),
            fixed => OffsetDateTime::from_unix_timestamp(fixed).unwrap_or_else(|_| self.inner.config.clock.now()),
        }
    }

    fn verifier(&self) -> Arc<Verifier> {
        // The lock only guards swapping one `Arc` for another, which a panic cannot leave half
        // done: a poisoned lock still holds a whole verifier (an empty default one would
        // answer every passport as unknown).
        Arc::clone(&self.inner.verifier.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Runs `f` on the store thread and awaits its answer.
    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> Result<T, store::StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.inner.store.run(f).await
    }

    /// Runs `f` on the lease store thread and awaits its answer.
    async fn with_lease_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> Result<T, store::StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.inner.lease_store.run(f).await
    }

    /// Runs `f` on the store thread and waits for it (for plain threads, such as a batch's).
    fn with_store_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> Result<T, store::StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.inner.store.send(Box::new(move |s| {
            let _ = tx.send(f(s));
        }))?;
        rx.recv().map_err(|_| ApiError::internal("the store thread stopped"))?.map_err(ApiError::internal)
    }

    /// Re-reads the revocations from the store and swaps them into the verifier.
    pub fn refresh_revocations(&self) -> Result<(), ApiError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.inner.store.send(Box::new(move |s| {
            let _ = tx.send(s.revocations());
        }))?;
        let list =
            rx.recv().map_err(|_| ApiError::internal("the store thread stopped"))?.map_err(ApiError::internal)?;
        let version = list.len() as u64;
        if version == self.inner.revocation_version.load(std::sync::atomic::Ordering::Relaxed) && version > 0 {
            return Ok(());
        }
        let mut r = Revocations::default();
        r.version = version;
        for entry in &list {
            match entry {
                Revocation::Passport(hash) => r.revoke_passport_hash_hex(hash),
                Revocation::Facility(kid) => {
                    if let Some(k) = Kid::from_base64(kid) {
                        r.revoke_facility(k);
                    }
                }
            }
        }
        {
            let mut v = self.inner.verifier.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            // Revocations only grow: a slower concurrent refresh must not put back an older list.
            if v.revocations().version <= version {
                *v = Arc::new(v.with_revocations(r));
            }
        }
        self.inner.revocation_version.store(version, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Counts an attempt under `key`; false once `limit` attempts fell in `window`.
    async fn allow(&self, key: String, limit: u32, window: Duration) -> Result<bool, ApiError> {
        Ok(self.count(vec![key], window).await?.first().is_none_or(|n| *n <= limit))
    }

    /// Attempts counted under each key in its current window, without counting one. One
    /// round trip to PostgreSQL for all of them.
    async fn counted(&self, keys: &[&str]) -> Result<Vec<u32>, ApiError> {
        match &self.inner.limits {
            Limits::Memory(limits) => {
                let Ok(limits) = limits.lock() else { return Ok(vec![u32::MAX; keys.len()]) };
                Ok(keys
                    .iter()
                    .map(|key| match limits.entries.get(*key) {
                        Some((start, window, n)) if start.elapsed() < *window => *n,
                        _ => 0,
                    })
                    .collect())
            }
            Limits::Shared(thread) => {
                let hashed = keys.iter().map(|k| self.counter_hash(k)).collect::<Vec<_>>();
                thread.run(move |c| c.counted(&hashed)).await
            }
        }
    }

    /// Counts an attempt under each key (distinct) and returns the attempts in each one's
    /// current window. One round trip to PostgreSQL for all of them.
    async fn count(&self, keys: Vec<String>, window: Duration) -> Result<Vec<u32>, ApiError> {
        match &self.inner.limits {
            Limits::Memory(limits) => {
                let Ok(mut limits) = limits.lock() else { return Ok(vec![u32::MAX; keys.len()]) };
                Ok(keys.into_iter().map(|key| limits.count(key, window)).collect())
            }
            Limits::Shared(thread) => {
                let hashed = keys.iter().map(|k| self.counter_hash(k)).collect::<Vec<_>>();
                thread.run(move |c| c.count(&hashed, window)).await
            }
        }
    }

    /// The form in which a counter's key is stored: a keyed hash, since keys name client
    /// addresses (the identity numbers in them are already hashes).
    fn counter_hash(&self, key: &str) -> Vec<u8> {
        self.inner.secret.tag_of("rate-limit", &[key.as_bytes()])
    }

    /// The client of a request for rate limits: its address, the rightmost untrusted hop of
    /// `X-Forwarded-For` when the peer is a configured trusted proxy (as nginx's
    /// `real_ip_recursive`); IPv6 by its /64, which one subscriber holds whole.
    fn client_key(&self, extensions: &axum::http::Extensions, headers: &axum::http::HeaderMap) -> String {
        let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| canonical_ip(c.0.ip()));
        let Some(peer) = peer else { return "unknown".to_owned() };
        client_key(peer, headers, &self.config().trusted_proxies)
    }
}

impl RateLimits {
    /// Counts an attempt under `key` and returns the attempts in the current window.
    fn count(&mut self, key: String, window: Duration) -> u32 {
        let now = Instant::now();
        // Expired entries are swept at most every 10 s, each by its own window, so the map
        // stays bounded by the live attempts and no lookup pays for a full scan.
        if self.entries.len() > 10_000
            && self.last_sweep.is_none_or(|t| now.duration_since(t) > Duration::from_secs(10))
        {
            self.entries.retain(|_, (start, w, _)| now.duration_since(*start) < *w);
            self.last_sweep = Some(now);
        }
        let entry = self.entries.entry(key).or_insert((now, window, 0));
        if now.duration_since(entry.0) >= entry.1 {
            *entry = (now, window, 0);
        }
        entry.2 = entry.2.saturating_add(1);
        entry.2
    }
}

/// `N` random bytes as hex; `None` without an entropy source.
fn random_hex<const N: usize>() -> Option<String> {
    let mut b = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).ok()?;
    Some(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as a dual-stack listener reports IPv4
/// peers) as the IPv4 address it is.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// See [`AppState::client_key`]; `peer` is already canonical.
fn client_key(peer: IpAddr, headers: &axum::http::HeaderMap, trusted: &[IpAddr]) -> String {
    // Hops looked at, from the right: a longer chain is a forged one, never ours.
    const MAX_HOPS: usize = 16;
    let mut client = peer;
    if trusted.contains(&peer) {
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        for hop in hops.iter().rev().take(MAX_HOPS) {
            // A hop that is not an address ends the chain we can follow.
            let Ok(ip) = hop.trim().parse::<IpAddr>() else { break };
            client = canonical_ip(ip);
            if !trusted.contains(&client) {
                break;
            }
        }
    }
    match client {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// SHA-256 of an API token: the only form in which the service stores (facility tokens) or
/// configures (`admin_token_sha256`) tokens, and in which it compares them.
pub fn token_hash(token: &str) -> [u8; 32] {
    let mut h = [0u8; 32];
    h.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, token.trim().as_bytes()).as_ref());
    h
}

/// The hash of the `Authorization: Bearer <token>` of a request, if it has one.
fn bearer_token_hash(headers: &axum::http::HeaderMap) -> Option<[u8; 32]> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    Some(token_hash(value.strip_prefix("Bearer ")?))
}

/// A job for the store thread.
type StoreJob = Box<dyn FnOnce(&mut dyn Store) + Send>;

/// The store's connections, each owned by a plain OS thread that takes the next waiting job.
/// Why not the blocking pool? The synchronous PostgreSQL client runs its own runtime and
/// refuses to start on a thread that carries a tokio context, as blocking-pool threads do.
/// Why several? With one, a lookup waited behind every other request's store work: p99
/// 45 ms while a 100,000-row upload signed on PostgreSQL (scripts/lookup-during-upload).
struct StoreThread {
    jobs: std::sync::mpsc::Sender<StoreJob>,
}

impl StoreThread {
    /// `connections` connections to a PostgreSQL `url`; one to SQLite, which has one writer
    /// at a time (a second connection's read-then-write transaction could fail at once with
    /// SQLITE_BUSY_SNAPSHOT) and whose readers WAL already keeps from waiting on a batch's
    /// writes (lookup p99 19 ms during an upload).
    fn open(url: &str, connections: usize) -> Result<StoreThread, StartError> {
        let (jobs, queue) = std::sync::mpsc::channel::<StoreJob>();
        let queue = std::sync::Arc::new(Mutex::new(queue));
        let connections = if store::is_postgres(url) { connections.max(1) } else { 1 };
        for _ in 0..connections {
            let (opened_tx, opened) = std::sync::mpsc::channel();
            let (url, queue) = (url.to_owned(), std::sync::Arc::clone(&queue));
            std::thread::Builder::new()
                .name("vaxpass-store".into())
                .spawn(move || match store::open(&url) {
                    Ok(mut store) => {
                        let _ = opened_tx.send(Ok(()));
                        // Ends when the last sender (the service) is dropped. The lock is
                        // held only while taking a job, not while running it.
                        loop {
                            let job = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                            match job {
                                Ok(job) => job(store.as_mut()),
                                Err(_) => break,
                            }
                        }
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                    }
                })
                .map_err(|e| StartError::StoreThread(e.to_string()))?;
            // Opened one after another: the first applies the migrations.
            opened.recv().map_err(|_| StartError::StoreThread("stopped while opening".into()))??;
        }
        Ok(StoreThread { jobs })
    }

    fn send(&self, job: StoreJob) -> Result<(), ApiError> {
        self.jobs.send(job).map_err(|_| ApiError::internal("the store thread stopped"))
    }

    /// Runs `f` on this thread and awaits its answer.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> Result<T, store::StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Box::new(move |s| {
            let _ = tx.send(f(s));
        }))?;
        rx.await.map_err(|_| ApiError::internal("the store thread stopped"))?.map_err(ApiError::internal)
    }
}

/// A job for the counter thread.
type CounterJob = Box<dyn FnOnce(&mut store::SharedCounters) + Send>;

/// The shared rate-limit counters' PostgreSQL connection, owned by a plain thread as the
/// store's is (see [`StoreThread`]); a connection of its own, so that a lookup's checks do
/// not queue behind other requests' store work.
struct CounterThread {
    jobs: std::sync::mpsc::Sender<CounterJob>,
}

impl CounterThread {
    fn open(url: &str) -> Result<CounterThread, StartError> {
        let mut counters = store::SharedCounters::connect(url)?;
        let (jobs, queue) = std::sync::mpsc::channel::<CounterJob>();
        std::thread::Builder::new()
            .name("vaxpass-counters".into())
            .spawn(move || {
                for job in queue {
                    job(&mut counters);
                }
            })
            .map_err(|e| StartError::StoreThread(e.to_string()))?;
        Ok(CounterThread { jobs })
    }

    /// Runs `f` on the counter thread and awaits its answer.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut store::SharedCounters) -> Result<T, store::StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |c| {
                let _ = tx.send(f(c));
            }))
            .map_err(|_| ApiError::internal("the counter thread stopped"))?;
        rx.await.map_err(|_| ApiError::internal("the counter thread stopped"))?.map_err(ApiError::internal)
    }
}

/// The whole HTTP interface.
pub fn router(state: AppState) -> Router {
    let limit = state.config().max_body_bytes;
    Router::new()
        .merge(ops::router())
        .merge(verify::router())
        .merge(trust_list::router())
        .merge(passports::router())
        .merge(revocations::router())
        .merge(tokens::router())
        .merge(records::router())
        .merge(corrections::router())
        .merge(batches::router())
        .merge(pages::router())
        .layer(middleware::from_fn_with_state(state.clone(), timeouts))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn(security_headers))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Is this request an upload, with its own (longer) time limit?
fn is_upload(method: &Method, route: &str) -> bool {
    method == Method::POST && matches!(route, "/api/v1/batches" | "/api/v1/verify")
}

/// 408 after `request_timeout_secs`, or `upload_timeout_secs` for uploads: a 4.4 MB upload
/// at 300 KB/s needs 15 s, more than the small routes' 10 s (issue #8).
async fn timeouts(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str());
    let secs = if is_upload(request.method(), route) {
        state.config().upload_timeout_secs
    } else {
        state.config().request_timeout_secs
    };
    match tokio::time::timeout(Duration::from_secs(secs), next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout.into_response(),
    }
}

/// OWASP's baseline for every answer: no MIME sniffing (a QR PNG or JSON is never run as
/// script) and no `Referer` (download links carry their token in the query).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// Metrics and one log line per request, by matched route only: paths can hold UVCIs and
/// bodies personal data, so neither is logged. Labels come from fixed sets (see `metrics`).
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_owned();
    let method = request.method().clone();
    let response = next.run(request).await;
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    state.inner.metrics.request(&method, &route, status, elapsed);
    let method = metrics::method_label(&method);
    // Templates are ours, but a fallback route could echo more: never a long line.
    let route = truncate(&route, MAX_LOGGED_CHARS);
    tracing::info!(method, route, status, micros = elapsed.as_micros() as u64, "request");
    response
}

/// At most `max` characters of `s`.
fn truncate(s: &str, max: usize) -> &str {
    s.char_indices().nth(max).map_or(s, |(i, _)| &s[..i])
}

/// Serves until Ctrl-C or SIGTERM, then finishes the requests in flight for at most
/// [`SHUTDOWN_GRACE`].
pub async fn serve(state: AppState) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(state.config().listen).await?;
    tracing::info!(listen = %state.config().listen, "vaxpass serving");
    let shared = store::is_postgres(&state.config().db);
    if shared {
        listen_for_revocations(&state)?;
    }
    let refresher = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(if shared { REVOCATION_SAFETY_REFRESH } else { REVOCATION_REFRESH });
        loop {
            tick.tick().await;
            let s = refresher.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.refresh_revocations()).await {
                tracing::warn!(error = %e, "revocation refresh failed");
            }
        }
    });
    tokio::spawn(batches::sweep_leases(state.clone()));
    if let Limits::Shared(_) = &state.inner.limits {
        let sweeper = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(COUNTER_SWEEP);
            loop {
                tick.tick().await;
                if let Limits::Shared(thread) = &sweeper.inner.limits
                    && let Err(e) = thread.run(|c| c.sweep()).await
                {
                    tracing::warn!(error = %e, "deleting expired rate-limit counters failed");
                }
            }
        });
    }
    if let Some(addr) = state.config().metrics_listen {
        let metrics_listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(listen = %addr, "metrics serving");
        let app = ops::operators_router().with_state(state.clone());
        let config = state.config().clone();
        tokio::spawn(async move {
            if let Err(e) = serve_on(metrics_listener, app, config, std::future::pending()).await {
                tracing::error!(error = %e, "metrics listener stopped");
            }
        });
    }
    let config = state.config().clone();
    serve_on(listener, router(state), config, shutdown_signal()).await
}

/// Starts the thread that listens for revocation notifications (PostgreSQL) and refreshes
/// this instance's revocations on each; it ends once the service's state is dropped.
fn listen_for_revocations(state: &AppState) -> std::io::Result<()> {
    let url = state.config().db.clone();
    let weak = Arc::downgrade(&state.inner);
    std::thread::Builder::new().name("vaxpass-listen".into()).spawn(move || {
        store::listen_revocations(&url, || {
            let Some(inner) = weak.upgrade() else { return false };
            if let Err(e) = (AppState { inner }).refresh_revocations() {
                tracing::warn!(error = %e, "revocation refresh failed");
            }
            true
        });
    })?;
    Ok(())
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the connections finish
/// for at most [`SHUTDOWN_GRACE`].
///
/// `axum::serve` has no header-read or idle timeout and no connection cap: 1,100 idle sockets
/// against a 1,024 file limit stopped `/healthz` (issue #8). Here each connection must send
/// its headers, and may idle between requests, for at most `header_read_timeout_ms`; at most
/// `max_connections` are served at once (beyond, clients wait in the kernel's listen queue,
/// as with nginx's `worker_connections`); accept errors such as `EMFILE` pause the loop.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    app: Router,
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections.max(1)));
    let header_timeout = Duration::from_millis(config.header_read_timeout_ms.max(1));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => permit.map_err(std::io::Error::other)?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; pausing");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // Ends on close, timeout or error; the slot is free for the next client.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("requests still running after the shutdown grace; stopping anyway");
        }
    }
    Ok(())
}

/// Errors of one connection that ended before it was accepted: the next accept is fine.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests;
