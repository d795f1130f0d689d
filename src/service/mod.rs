//! The vaxpass service (SPEC §7): axum router, shared state, authentication, rate limits, one
//! file per route group. Handlers extract, call the library and map errors; CPU- and
//! database-bound work runs in `spawn_blocking`.

mod batches;
mod config;
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

pub use config::{Config, ConfigError, sha256_hex};
pub use error::ApiError;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use time::OffsetDateTime;

use crate::gate::DerivationKey;
use crate::pki::{self, CaFiles, Kid, Revocations, SigningKey, TrustStore};
use crate::store::{self, Revocation, Store};
use crate::verify::Verifier;

/// Station uploads signed at once by one instance; more get 429 (signing takes every core).
pub const MAX_RUNNING_BATCHES: usize = 2;

/// How often an instance re-reads revocations made through other instances.
pub const REVOCATION_REFRESH: Duration = Duration::from_secs(1);

/// State shared by every request.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    config: Config,
    store: StoreThread,
    verifier: RwLock<Arc<Verifier>>,
    revocation_version: std::sync::atomic::AtomicU64,
    secret: DerivationKey,
    registry: Option<Arc<crate::gate::Registry>>,
    admin_token_hash: Option<[u8; 32]>,
    list_signer: Option<(SigningKey, String)>,
    metrics: metrics::Metrics,
    limits: Mutex<RateLimits>,
    /// Photo decodes allowed at once (one per core): each may hold 64 MB for ~30 ms.
    photo_slots: tokio::sync::Semaphore,
    /// Station uploads signing at once.
    batch_slots: Arc<tokio::sync::Semaphore>,
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
    /// Issuing the development trust-list signer.
    #[error(transparent)]
    Issue(#[from] pki::IssueError),
    /// The database.
    #[error("database: {0}")]
    Store(#[from] store::StoreError),
    /// Bad admin token hash.
    #[error("admin_token_sha256 is not 64 hex digits")]
    AdminHash,
    /// The store thread could not start or stopped.
    #[error("the database thread: {0}")]
    StoreThread(String),
    /// The revocations could not be read.
    #[error("reading the revocations: {0}")]
    Revocations(String),
}

impl AppState {
    /// Opens the store, loads the hierarchy and the deployment secret. Blocking.
    pub fn open(config: Config, now: OffsetDateTime) -> Result<AppState, StartError> {
        let store = StoreThread::open(&config.db)?;
        let mut trust = TrustStore::new();
        trust.load_trusted(&config.keys)?;
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
        let list_signer = match (&config.trust_list_key, &config.trust_list_cert) {
            (Some(k), Some(c)) => {
                Some((SigningKey::load(k)?, String::from_utf8_lossy(&pki::read_file(c)?).into_owned()))
            }
            _ => {
                let root = config.keys.join("root");
                if root.join("key.pem").exists() {
                    // Development hierarchy: issue a short-lived signer from its root.
                    let ca = CaFiles::load(&root.join("key.pem"), &root.join("cert.pem"))?;
                    let issued = pki::issue_trust_list_signer(&ca, 30, now)?;
                    let key_pem = issued.key_pem.unwrap_or_default();
                    Some((SigningKey::from_pem(&root.join("(generated)"), key_pem.as_bytes())?, issued.cert_pem))
                } else {
                    None
                }
            }
        };
        let state = AppState {
            inner: Arc::new(Shared {
                config,
                store,
                verifier: RwLock::new(Arc::new(Verifier::new(trust, Revocations::default()))),
                revocation_version: Default::default(),
                secret,
                registry,
                admin_token_hash,
                list_signer,
                metrics: metrics::Metrics::default(),
                limits: Mutex::new(RateLimits::default()),
                photo_slots: tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
                ),
                batch_slots: Arc::new(tokio::sync::Semaphore::new(MAX_RUNNING_BATCHES)),
            }),
        };
        state.refresh_revocations().map_err(|e| {
            StartError::Revocations(match e {
                ApiError::Internal(cause) => cause,
                other => other.to_string(),
            })
        })?;
        Ok(state)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    fn verifier(&self) -> Arc<Verifier> {
        self.inner.verifier.read().map(|v| Arc::clone(&v)).unwrap_or_default()
    }

    /// Runs `f` on the store thread and awaits its answer.
    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> Result<T, store::StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner.store.send(Box::new(move |s| {
            let _ = tx.send(f(s));
        }))?;
        rx.await.map_err(|_| ApiError::internal("the store thread stopped"))?.map_err(ApiError::internal)
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
        if let Ok(mut v) = self.inner.verifier.write() {
            // Revocations only grow: a slower concurrent refresh must not put back an older list.
            if v.revocations().version <= version {
                *v = Arc::new(v.with_revocations(r));
            }
        }
        self.inner.revocation_version.store(version, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Counts an attempt under `key`; false once `limit` attempts fell in `window`.
    fn allow(&self, key: String, limit: u32, window: Duration) -> bool {
        let Ok(mut limits) = self.inner.limits.lock() else { return false };
        let now = Instant::now();
        // Expired entries are swept at most every 10 s, each by its own window, so the map
        // stays bounded by the live attempts and no lookup pays for a full scan.
        if limits.entries.len() > 10_000
            && limits.last_sweep.is_none_or(|t| now.duration_since(t) > Duration::from_secs(10))
        {
            limits.entries.retain(|_, (start, w, _)| now.duration_since(*start) < *w);
            limits.last_sweep = Some(now);
        }
        let entry = limits.entries.entry(key).or_insert((now, window, 0));
        if now.duration_since(entry.0) >= entry.1 {
            *entry = (now, window, 0);
        }
        entry.2 = entry.2.saturating_add(1);
        entry.2 <= limit
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

/// The store, owned by a plain OS thread that runs jobs in order. Why not the blocking pool?
/// The synchronous PostgreSQL client runs its own runtime and refuses to start on a thread
/// that carries a tokio context, as blocking-pool threads do; and the store serialises its
/// work anyway.
struct StoreThread {
    jobs: std::sync::mpsc::Sender<StoreJob>,
}

impl StoreThread {
    fn open(url: &str) -> Result<StoreThread, StartError> {
        let (jobs, queue) = std::sync::mpsc::channel::<StoreJob>();
        let (opened_tx, opened) = std::sync::mpsc::channel();
        let url = url.to_owned();
        std::thread::Builder::new()
            .name("vaxpass-store".into())
            .spawn(move || match store::open(&url) {
                Ok(mut store) => {
                    let _ = opened_tx.send(Ok(()));
                    // Ends when the last sender (the service) is dropped.
                    for job in queue {
                        job(store.as_mut());
                    }
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                }
            })
            .map_err(|e| StartError::StoreThread(e.to_string()))?;
        opened.recv().map_err(|_| StartError::StoreThread("stopped while opening".into()))??;
        Ok(StoreThread { jobs })
    }

    fn send(&self, job: StoreJob) -> Result<(), ApiError> {
        self.jobs.send(job).map_err(|_| ApiError::internal("the store thread stopped"))
    }
}

/// The whole HTTP interface.
pub fn router(state: AppState) -> Router {
    let limit = state.config().max_body_bytes;
    let timeout = Duration::from_secs(state.config().request_timeout_secs);
    Router::new()
        .merge(ops::router())
        .merge(verify::router())
        .merge(trust_list::router())
        .merge(passports::router())
        .merge(revocations::router())
        .merge(tokens::router())
        .merge(records::router())
        .merge(batches::router())
        .merge(pages::router())
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Metrics and one log line per request, by matched route only: paths can hold UVCIs and
/// bodies personal data, so neither is logged.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_owned();
    let method = request.method().to_string();
    let response = next.run(request).await;
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    state.inner.metrics.request(&method, &route, status, elapsed);
    tracing::info!(%method, %route, status, micros = elapsed.as_micros() as u64, "request");
    response
}

/// Serves until Ctrl-C or SIGTERM, then finishes the requests in flight.
pub async fn serve(state: AppState) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(state.config().listen).await?;
    tracing::info!(listen = %state.config().listen, "vaxpass serving");
    let refresher = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REVOCATION_REFRESH);
        loop {
            tick.tick().await;
            let s = refresher.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.refresh_revocations()).await {
                tracing::warn!(error = %e, "revocation refresh failed");
            }
        }
    });
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await
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
