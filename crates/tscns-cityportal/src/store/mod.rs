//! The store: the registry, issued certificates and self-declarations, used marche da bollo,
//! sessions and the append-only audit log.
//!
//! One [`Store`] API, two engines chosen by URL, one code path (sqlx's `Any` driver with runtime
//! queries: no live database is needed at build time):
//! - `sqlite://PATH`: the embedded default, created on first use, in WAL mode;
//! - `postgres://USER@HOST:PORT/DB`: several portal instances in front of one database.
//!
//! Migrations are versioned (table `schema_migrations`) and run when the store opens. Issuing is
//! one transaction: the marca is claimed, the certificate is stored and the audit line is written,
//! or nothing is. Concurrent issuances through one [`Store`] share that transaction (group
//! commit: one commit and one fsync for up to 32 of them), each still all or nothing and each
//! answered only after the commit. A marca is used once whichever instance sees it (a primary key, not a check in
//! memory); certificate ids and verification codes come from the operating system's random
//! generator, never from a per-process counter.
//!
//! The font objects every certificate PDF contains are kept once (table `pdf_parts`, see
//! [`stored_pdf`]); every read puts them back and checks the whole file's SHA-256. People's
//! records are kept in memory with the registry's version, which triggers set anew on every change
//! of the registry's tables: a change made anywhere is seen by the next read.

mod migrations;
mod parts;
mod portal;

pub use portal::RateDecision;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use time::OffsetDateTime;
use tscns_cert::CodiceFiscale;

use crate::domain::{
    CertificateKind, Destination, Family, Municipality, Person, RegistryRecord, Stamp,
};
use crate::registry::{build_record, Registry};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL is neither `sqlite://` nor `postgres://`.
    #[error("store URL {0:?}: use sqlite://PATH or postgres://USER@HOST:PORT/DATABASE")]
    UnsupportedUrl(String),
    /// The database could not be reached or answered with an error.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration {version} ({name}): {source}")]
    Migration {
        /// Version number.
        version: i64,
        /// Name.
        name: &'static str,
        /// The database error.
        source: sqlx::Error,
    },
    /// The database has a schema newer than this program knows.
    #[error("the database schema is at version {found}, newer than this program's {known}: upgrade the portal")]
    SchemaTooNew {
        /// Version in the database.
        found: i64,
        /// Newest version this program knows.
        known: i64,
    },
    /// The marca da bollo was already used for another document.
    #[error("this marca da bollo ({0}) has already been used for another document: each marca is valid for one document only")]
    MarcaAlreadyUsed(String),
    /// A row that this program cannot read back (edited by hand, or a bug).
    #[error("corrupt row in {table}: {reason}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The operating system's random generator failed.
    #[error("random generator: {0}")]
    Random(String),
    /// The database could not be reached or failed before a commit: nothing was written.
    #[error("the database is not available ({0}): nothing was stored and the marca was not used; try again in a few minutes")]
    Unavailable(String),
    /// The program stopped before the store answered (the certificate may or may not have been
    /// stored: the citizen's list of certificates says which).
    #[error("the store did not answer before the program stopped: look for the certificate in the list of issued certificates before asking again")]
    Interrupted,
    /// The registry changed after the records of an issuance were read: nothing was stored and
    /// the marca was not used.
    #[error("the registry changed while the certificate was being made: nothing was stored and the marca was not used; ask again")]
    RegistryChanged,
}

/// The database engine behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// An issued certificate, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCertificate {
    /// Certificate id (printed on it, part of the verification URL).
    pub id: String,
    /// Verification code (at least 64 random bits).
    pub verification_code: String,
    /// Municipality (cadastral code).
    pub municipality: String,
    /// Kind.
    pub kind: CertificateKind,
    /// Subject's codice fiscale.
    pub subject: String,
    /// Requester's codice fiscale.
    pub requester: String,
    /// Stamp (`None`: exempt by law).
    pub stamp: Option<Stamp>,
    /// Destination.
    pub destination: Destination,
    /// Issue time.
    pub issued_at: OffsetDateTime,
    /// SHA-256 of `pdf`, lower-case hex.
    pub sha256: String,
    /// The sealed PDF.
    pub pdf: Vec<u8>,
}

/// Fresh, unguessable identifiers for a certificate about to be issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateIds {
    /// Certificate id: the municipality's cadastral code and 80 random bits, e.g.
    /// `H769-7QX2M4K9PA3HZT1C`.
    pub id: String,
    /// Verification code: 80 random bits in Crockford base 32, in groups of four.
    pub verification_code: String,
}

/// A self-declaration's metadata (the PDF itself is not kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelfDeclarationRecord {
    /// Id.
    pub id: String,
    /// Declarant's codice fiscale.
    pub declarant: String,
    /// Slugs of the declared facts.
    pub facts: Vec<String>,
    /// When it was produced.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// SHA-256 of the PDF given to the citizen.
    pub sha256: String,
}

/// One line of the audit log: who, what, about whom, when, from where, with what outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Who: the logged-in citizen's codice fiscale (or `-` for the system).
    pub actor: String,
    /// Their authentication level (Cohesion `AuthLevel`, e.g. 4 for a smart card).
    pub auth_level: i64,
    /// What, e.g. `certificate.issue`.
    pub action: String,
    /// About whom (codice fiscale), if anyone.
    pub subject: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// From which address.
    pub remote_addr: String,
    /// With what outcome, e.g. `ok` or the refusal.
    pub outcome: String,
}

/// A login session (used by the portal server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Session id (the cookie value; random). The store keeps only its SHA-256.
    pub id: String,
    /// The citizen's codice fiscale.
    pub codice_fiscale: String,
    /// Authentication level.
    pub auth_level: i64,
    /// CSRF token bound to the session.
    pub csrf_token: String,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Expires.
    pub expires_at: OffsetDateTime,
    /// Opaque data for the server (JSON).
    pub data: String,
}

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    commits: Arc<GroupCommit>,
    parts: Arc<parts::Known>,
    records: Arc<RecordCache>,
    /// Marche this store has claimed (a cheap check before a PDF is made from kept records;
    /// the claim in the database is what counts).
    claimed: Arc<crate::kept::Kept<String, ()>>,
}

/// The records an issuance is made from, and the registry version they are of (checked again in
/// the issuing transaction: see [`Store::issue_checked`]).
pub(crate) struct IssueRecords {
    /// The requester's record (`None`: not in this registry).
    pub(crate) requester: Option<RegistryRecord>,
    /// The subject's record (`None`: not in this registry).
    pub(crate) subject: Option<RegistryRecord>,
    /// Whether the marca is known to be used already.
    pub(crate) marca_used: bool,
    /// The registry version they were read at (`None`: no version row, nothing is checked).
    pub(crate) version: Option<String>,
    /// Whether they came from memory (no round trip to the database).
    pub(crate) kept: bool,
}

/// A certificate's PDF from its stored form, as [`Store::certificate`] rebuilds it: the row's
/// own bytes, its `pdf_parts` column (`OFFSET:SHA256` entries, comma-separated, in file order)
/// and `part`, which gives the bytes of a stored part by its SHA-256. A column that does not
/// parse, a missing part or offsets that do not fit give [`StoreError::Corrupt`]. The caller
/// checks the result against the row's SHA-256.
pub fn stored_pdf(
    own: &[u8],
    column: &str,
    mut part: impl FnMut(&str) -> Option<Arc<[u8]>>,
) -> Result<Vec<u8>, StoreError> {
    let mut splices = Vec::new();
    for (at, sha256) in parts::parse_column(column)? {
        let bytes = part(&sha256).ok_or_else(|| StoreError::Corrupt {
            table: "pdf_parts",
            reason: format!("part {sha256} is missing"),
        })?;
        splices.push((at, bytes));
    }
    parts::join(own, &splices)
}

/// How much an archive of certificates takes (see [`Store::archive_size`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveSize {
    /// Certificates stored.
    pub certificates: u64,
    /// Bytes of their PDFs as the certificates' rows keep them (their shared parts cut out).
    pub certificate_bytes: u64,
    /// Shared parts stored (each once, whatever the number of certificates containing it).
    pub shared_parts: u64,
    /// Bytes of the shared parts.
    pub shared_part_bytes: u64,
}

/// What a record is built from.
struct RecordRows {
    municipality: Municipality,
    person: Person,
    family: Option<Family>,
    family_people: Vec<Person>,
}

impl RecordRows {
    /// The person's record.
    fn record(&self) -> RegistryRecord {
        build_record(
            self.municipality.clone(),
            self.person.clone(),
            self.family.clone(),
            &self.family_people,
        )
    }

    /// The record of `subject` when these rows hold it (the person, or one of their family);
    /// `None` when it must be read on its own.
    fn record_of(&self, subject: &CodiceFiscale) -> Option<RegistryRecord> {
        if self.person.codice_fiscale == *subject {
            return Some(self.record());
        }
        let person = self
            .family_people
            .iter()
            .find(|p| p.codice_fiscale == *subject)?;
        Some(build_record(
            self.municipality.clone(),
            person.clone(),
            self.family.clone(),
            &self.family_people,
        ))
    }
}

/// People's rows as last read, by (municipality, codice fiscale): the registry version they
/// were read at, when, and the rows (`None`: not in the registry).
type RecordCache = crate::kept::Kept<(String, String), (String, Instant, Option<Arc<RecordRows>>)>;

/// Kept rows are read again after this long even when the version says nothing changed (a
/// change that bypassed the triggers is seen within it).
const RECORD_TTL: Duration = Duration::from_secs(60);

/// At most this many people are kept.
const MAX_CACHED_RECORDS: usize = 4096;

/// Issuances waiting to be written, and the lock the writer of a group holds.
///
/// Every [`Store::issue`] queues its certificate and starts a task that takes the writer lock
/// and writes everything queued (at most [`MAX_GROUP`]) in one transaction: concurrent
/// issuances share one commit, and so one fsync. Each caller is answered after that commit, so
/// durability is the same as one transaction each; a group that fails is written again one
/// issuance at a time, so each caller gets its own answer.
#[derive(Default)]
struct GroupCommit {
    queue: std::sync::Mutex<Vec<Pending>>,
    writer: tokio::sync::Mutex<()>,
}

impl GroupCommit {
    /// The queue (a panic elsewhere while it was held leaves it usable).
    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Pending>> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

/// The most issuances one commit writes (13 bound values each, well inside both engines'
/// limits).
const MAX_GROUP: usize = 32;

/// Why a group's transaction did not commit.
enum GroupFailure {
    /// A statement was refused (a constraint): the transaction was rolled back.
    Refused,
    /// The database could not be reached or failed: nothing was written.
    Unavailable(String),
    /// The commit failed or its answer was lost: it may have happened.
    Commit {
        answers: Vec<Result<(), StoreError>>,
        reason: String,
    },
}

impl From<sqlx::Error> for GroupFailure {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(_) => GroupFailure::Refused,
            other => GroupFailure::Unavailable(other.to_string()),
        }
    }
}

/// One issuance waiting in the queue, with its answer channel.
struct Pending {
    job: IssueJob,
    done: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

/// The values one issuance writes.
struct IssueJob {
    id: String,
    verification_code: String,
    municipality: String,
    kind: i64,
    subject: String,
    requester: String,
    stamp: String,
    marca: Option<String>,
    destination: i64,
    issued_at: i64,
    sha256: String,
    /// The PDF's own bytes (its shared parts cut out).
    pdf: Vec<u8>,
    /// Where the shared parts go back (`None`: `pdf` is the whole file).
    pdf_parts: Option<String>,
    /// The shared parts cut out.
    parts: Vec<parts::Part>,
    audit: AuditEntry,
    /// The registry version its records are of, checked in its transaction.
    registry_version: Option<String>,
}

impl IssueJob {
    /// Whether its records are of another registry version than `now`.
    fn stale(&self, now: Option<&String>) -> bool {
        self.registry_version
            .as_ref()
            .is_some_and(|v| Some(v) != now)
    }

    fn new(c: &StoredCertificate, audit: &AuditEntry) -> Result<IssueJob, StoreError> {
        let split = parts::split(&c.pdf, parts::candidates());
        Ok(IssueJob {
            id: c.id.clone(),
            verification_code: c.verification_code.clone(),
            municipality: c.municipality.clone(),
            kind: i64::from(c.kind.code()),
            subject: c.subject.clone(),
            requester: c.requester.clone(),
            stamp: serde_json::to_string(&c.stamp).map_err(corrupt("certificates"))?,
            marca: match &c.stamp {
                Some(Stamp::Marca(m)) => Some(m.as_str().to_string()),
                _ => None,
            },
            destination: i64::from(c.destination.code()),
            issued_at: unix(c.issued_at),
            sha256: c.sha256.clone(),
            pdf_parts: split.column(),
            parts: split.splices.into_iter().map(|(_, p)| p).collect(),
            pdf: split.own,
            audit: audit.clone(),
            registry_version: None,
        })
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

impl IssueJob {
    /// Binds the 13 columns of its `certificates` row, in table order.
    fn bind_certificate<'q>(&'q self, q: AnyQuery<'q>) -> AnyQuery<'q> {
        q.bind(self.id.as_str())
            .bind(self.verification_code.as_str())
            .bind(self.municipality.as_str())
            .bind(self.kind)
            .bind(self.subject.as_str())
            .bind(self.requester.as_str())
            .bind(self.stamp.as_str())
            .bind(self.marca.as_deref())
            .bind(self.destination)
            .bind(self.issued_at)
            .bind(self.sha256.as_str())
            .bind(self.pdf.as_slice())
            .bind(self.pdf_parts.as_deref())
    }
}

/// Binds the 7 columns of an `audit_log` row.
fn bind_audit<'q>(q: AnyQuery<'q>, a: &'q AuditEntry) -> AnyQuery<'q> {
    q.bind(a.actor.as_str())
        .bind(a.auth_level)
        .bind(a.action.as_str())
        .bind(a.subject.as_deref())
        .bind(unix(a.at))
        .bind(a.remote_addr.as_str())
        .bind(a.outcome.as_str())
}

/// `($1, $2, …), ($k+1, …)`: `rows` groups of `width` numbered placeholders.
fn placeholders(rows: usize, width: usize) -> String {
    let mut out = String::with_capacity(rows * width * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..width {
            if c > 0 {
                out.push_str(", ");
            }
            out.push_str(&format!("${}", r * width + c + 1));
        }
        out.push(')');
    }
    out
}

/// `n` random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(b)
}

/// Crockford base 32 of 80 bits (16 characters).
fn base32_80(b: &[u8; 10]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut n: u128 = 0;
    for &x in b {
        n = (n << 8) | u128::from(x);
    }
    (0..16)
        .rev()
        .map(|i| char::from(ALPHABET[((n >> (i * 5)) & 31) as usize]))
        .collect()
}

fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

fn from_unix(table: &'static str, s: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(s).map_err(|e| StoreError::Corrupt {
        table,
        reason: e.to_string(),
    })
}

fn corrupt(table: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        table,
        reason: e.to_string(),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation()
                || matches!(d.code().as_deref(), Some("23505" | "2067" | "1555"))
        }
        _ => false,
    }
}

impl Store {
    /// Opens (and on first use creates) the store at `url`, then runs the pending migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (engine, url) = if let Some(rest) = url.strip_prefix("sqlite://") {
            let url = if rest.contains('?') {
                url.to_string()
            } else {
                format!("sqlite://{rest}?mode=rwc")
            };
            (Engine::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Engine::Postgres, url.to_string())
        } else {
            return Err(StoreError::UnsupportedUrl(
                url.split('@')
                    .next_back()
                    .unwrap_or("")
                    .chars()
                    .take(80)
                    .collect(),
            ));
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(if engine == Engine::Sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(30));
        if engine == Engine::Sqlite {
            // A connection to a local file does not go stale: no round trip to test it each
            // time it is taken from the pool.
            options = options.test_before_acquire(false);
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 30000").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&url).await?;
        let store = Store {
            pool,
            engine,
            commits: Arc::new(GroupCommit::default()),
            parts: Arc::new(parts::Known::new(parts::MAX_KNOWN)),
            records: Arc::new(RecordCache::new(MAX_CACHED_RECORDS)),
            claimed: Arc::new(crate::kept::Kept::new(MAX_CACHED_RECORDS)),
        };
        migrations::run(&store.pool, engine).await?;
        Ok(store)
    }

    /// The engine behind this store.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The schema version (the newest migration applied).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("v")?)
    }

    /// SQLite's journal mode (`wal`), for checks; `None` on PostgreSQL.
    pub async fn sqlite_journal_mode(&self) -> Result<Option<String>, StoreError> {
        if self.engine != Engine::Sqlite {
            return Ok(None);
        }
        let row = sqlx::query("PRAGMA journal_mode")
            .fetch_one(&self.pool)
            .await?;
        Ok(Some(row.try_get::<String, _>(0)?))
    }

    // ---- registry ----

    /// Replaces the municipality's registry with `registry`, in one transaction.
    pub async fn import(&self, registry: &Registry) -> Result<(), StoreError> {
        let m = registry.municipality();
        let code = m.cadastral_code.as_str();
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM people WHERE municipality = $1")
            .bind(code)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM families WHERE municipality = $1")
            .bind(code)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM municipalities WHERE cadastral_code = $1")
            .bind(code)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO municipalities (cadastral_code, data) VALUES ($1, $2)")
            .bind(code)
            .bind(serde_json::to_string(m).map_err(corrupt("municipalities"))?)
            .execute(&mut *tx)
            .await?;
        for f in registry.families() {
            sqlx::query("INSERT INTO families (municipality, id, data) VALUES ($1, $2, $3)")
                .bind(code)
                .bind(f.id.as_str())
                .bind(serde_json::to_string(f).map_err(corrupt("families"))?)
                .execute(&mut *tx)
                .await?;
        }
        for p in registry.people() {
            sqlx::query(
                "INSERT INTO people (municipality, codice_fiscale, family_id, data) VALUES ($1, $2, $3, $4)",
            )
            .bind(code)
            .bind(p.codice_fiscale.as_str().to_string())
            .bind(p.family.clone())
            .bind(serde_json::to_string(p).map_err(corrupt("people"))?)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The municipality with this cadastral code, if imported.
    pub async fn municipality(&self, code: &str) -> Result<Option<Municipality>, StoreError> {
        let row = sqlx::query("SELECT data FROM municipalities WHERE cadastral_code = $1")
            .bind(code)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            serde_json::from_str(&r.try_get::<String, _>("data")?)
                .map_err(corrupt("municipalities"))
        })
        .transpose()
    }

    /// The record of a person of municipality `code` (`None`: not in this registry).
    pub async fn record(
        &self,
        code: &str,
        cf: &CodiceFiscale,
    ) -> Result<Option<RegistryRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let version = registry_version(&mut conn, None).await?.0;
        Ok(self
            .record_rows(&mut conn, version.as_deref(), code, cf)
            .await?
            .map(|r| r.record()))
    }

    /// The records of a requester and of the subject of their request, read together: when the
    /// subject is the requester or one of their family, from the same reads.
    pub async fn records(
        &self,
        code: &str,
        requester: &CodiceFiscale,
        subject: &CodiceFiscale,
    ) -> Result<(Option<RegistryRecord>, Option<RegistryRecord>), StoreError> {
        let (requester, subject, _) = self
            .records_and_marca(code, requester, subject, None)
            .await?;
        Ok((requester, subject))
    }

    /// As [`records`](Self::records), and whether `marca` was already used (a cheap check
    /// before building a PDF; the claim in [`issue`](Self::issue) is what counts), on one
    /// connection. Records are kept in memory with the registry's version, which triggers set anew
    /// on every change of the registry's tables (an import, another instance's import, an edit
    /// by hand): while it stays the same, this is one round trip.
    pub async fn records_and_marca(
        &self,
        code: &str,
        requester: &CodiceFiscale,
        subject: &CodiceFiscale,
        marca: Option<&str>,
    ) -> Result<(Option<RegistryRecord>, Option<RegistryRecord>, bool), StoreError> {
        let r = self.read_records(code, requester, subject, marca).await?;
        Ok((r.requester, r.subject, r.marca_used))
    }

    /// The records an issuance is made from: from memory, without a round trip, when both are
    /// kept at one registry version and `fresh` is false; else as
    /// [`records_and_marca`](Self::records_and_marca). [`issue_checked`](Self::issue_checked)
    /// then stores the certificate only if the registry is still at that version.
    pub(crate) async fn issue_records(
        &self,
        code: &str,
        requester: &CodiceFiscale,
        subject: &CodiceFiscale,
        marca: Option<&str>,
        fresh: bool,
    ) -> Result<IssueRecords, StoreError> {
        if !fresh {
            if let Some(r) = self.kept_records(code, requester, subject, marca) {
                return Ok(r);
            }
        }
        self.read_records(code, requester, subject, marca).await
    }

    /// Both records from memory, if kept (and young enough) at the same registry version.
    fn kept_records(
        &self,
        code: &str,
        requester: &CodiceFiscale,
        subject: &CodiceFiscale,
        marca: Option<&str>,
    ) -> Option<IssueRecords> {
        let kept = |cf: &CodiceFiscale| {
            self.records
                .get(&(code.to_string(), cf.as_str().to_string()))
                .filter(|(_, at, _)| at.elapsed() < RECORD_TTL)
        };
        let (version, _, rows) = kept(requester)?;
        let subject_record = match &rows {
            None => None,
            Some(rows) => match rows.record_of(subject) {
                Some(r) => Some(r),
                None => {
                    let (at, _, subject_rows) = kept(subject)?;
                    if at != version {
                        return None;
                    }
                    subject_rows.map(|r| r.record())
                }
            },
        };
        Some(IssueRecords {
            requester: rows.map(|r| r.record()),
            subject: subject_record,
            marca_used: marca.is_some_and(|m| self.claimed.contains(m)),
            version: Some(version),
            kept: true,
        })
    }

    /// Both records and the marca check, read from the database at one version (kept rows
    /// reused while it holds), on one connection.
    async fn read_records(
        &self,
        code: &str,
        requester: &CodiceFiscale,
        subject: &CodiceFiscale,
        marca: Option<&str>,
    ) -> Result<IssueRecords, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let (version, used) = registry_version(&mut conn, marca).await?;
        let v = version.as_deref();
        let done = |requester, subject| IssueRecords {
            requester,
            subject,
            marca_used: used,
            version: version.clone(),
            kept: false,
        };
        let Some(rows) = self.record_rows(&mut conn, v, code, requester).await? else {
            return Ok(done(None, None));
        };
        let subject_record = match rows.record_of(subject) {
            Some(r) => Some(r),
            None => self
                .record_rows(&mut conn, v, code, subject)
                .await?
                .map(|r| r.record()),
        };
        Ok(done(Some(rows.record()), subject_record))
    }

    /// A person's rows: from memory when kept at this registry `version`, else from the
    /// database (and kept).
    async fn record_rows(
        &self,
        conn: &mut sqlx::AnyConnection,
        version: Option<&str>,
        code: &str,
        cf: &CodiceFiscale,
    ) -> Result<Option<Arc<RecordRows>>, StoreError> {
        let key = (code.to_string(), cf.as_str().to_string());
        if let Some(v) = version {
            if let Some((kept_at, at, rows)) = self.records.get(&key) {
                if kept_at == v && at.elapsed() < RECORD_TTL {
                    return Ok(rows);
                }
            }
        }
        let rows = read_record_rows(conn, code, cf).await?.map(Arc::new);
        if let Some(v) = version {
            self.records
                .insert(key, (v.to_string(), Instant::now(), rows.clone()));
        }
        Ok(rows)
    }

    // ---- certificates ----

    /// Fresh identifiers for a certificate of municipality `code` (80 random bits each).
    pub fn new_certificate_ids(code: &str) -> Result<CertificateIds, StoreError> {
        let a: [u8; 10] = random_bytes()?;
        let b: [u8; 10] = random_bytes()?;
        let c = base32_80(&b);
        Ok(CertificateIds {
            id: format!("{code}-{}", base32_80(&a)),
            verification_code: format!("{}-{}-{}-{}", &c[0..4], &c[4..8], &c[8..12], &c[12..16]),
        })
    }

    /// Whether a marca da bollo was already used (a cheap check before building a PDF; the
    /// claim in [`issue`](Self::issue) is what counts).
    pub async fn marca_used(&self, marca: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM used_marche WHERE marca = $1")
            .bind(marca)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Issues a certificate in one transaction: claims its marca (if any), stores it, writes the
    /// audit line. A marca already used gives [`StoreError::MarcaAlreadyUsed`] and stores nothing.
    ///
    /// Concurrent issuances share a transaction (group commit: one fsync for all, each claim,
    /// certificate and audit line still all or nothing), and the write finishes even if the
    /// caller stops waiting: a certificate is never half stored, and never stored without its
    /// caller's answer being `Ok` unless the caller went away.
    pub async fn issue(
        &self,
        certificate: &StoredCertificate,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        self.issue_checked(certificate, audit, None).await
    }

    /// As [`issue`](Self::issue), and only if the registry is still at `version` (when given)
    /// inside the issuing transaction: else nothing is stored, the marca is not claimed, and the
    /// answer is [`StoreError::RegistryChanged`].
    pub(crate) async fn issue_checked(
        &self,
        certificate: &StoredCertificate,
        audit: &AuditEntry,
        version: Option<String>,
    ) -> Result<(), StoreError> {
        let mut job = IssueJob::new(certificate, audit)?;
        job.registry_version = version;
        let (done, answer) = tokio::sync::oneshot::channel();
        self.commits.queue().push(Pending { job, done });
        let store = self.clone();
        tokio::spawn(store.writer_task());
        answer.await.unwrap_or(Err(StoreError::Interrupted))
    }

    /// [`write_queued`](Self::write_queued) as a task to spawn (boxed: it may spawn itself).
    fn writer_task(self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move { self.write_queued().await })
    }

    /// Takes the writer lock and writes what is queued (nothing, if an earlier writer took it).
    async fn write_queued(&self) {
        let _writer = self.commits.writer.lock().await;
        let group: Vec<Pending> = {
            let mut queue = self.commits.queue();
            let n = queue.len().min(MAX_GROUP);
            queue.drain(..n).collect()
        };
        if group.is_empty() {
            return;
        }
        // A marca twice in one group: the later issuance waits for the next group, so it is
        // refused only once the first one's claim is committed.
        let mut seen = HashSet::new();
        let (mut writable, mut deferred) = (Vec::with_capacity(group.len()), Vec::new());
        for p in group {
            match &p.job.marca {
                Some(m) if !seen.insert(m.clone()) => deferred.push(p),
                _ => writable.push(p),
            }
        }
        if !deferred.is_empty() {
            self.commits.queue().splice(0..0, deferred);
            let store = self.clone();
            tokio::spawn(store.writer_task());
        }
        if writable.len() == 1 {
            self.write_each(writable).await;
            return;
        }
        match self.write_group(&writable).await {
            Ok(answers) => {
                for (p, a) in writable.into_iter().zip(answers) {
                    let _ = p.done.send(a);
                }
            }
            // A statement refused (a constraint): the transaction is rolled back; one
            // transaction each, so each caller gets its own answer.
            Err(GroupFailure::Refused) => self.write_each(writable).await,
            // The database is unreachable or failing: nothing was written, and trying each
            // issuance again would only make every caller wait longer.
            Err(GroupFailure::Unavailable(reason)) => {
                for p in writable {
                    let _ = p.done.send(Err(StoreError::Unavailable(reason.clone())));
                }
            }
            // The commit's answer was lost: it may have happened. Each certificate says.
            Err(GroupFailure::Commit { answers, reason }) => {
                for (p, a) in writable.into_iter().zip(answers) {
                    let a = match a {
                        Ok(()) => match self.certificate_stored(&p.job.id).await {
                            Ok(true) => Ok(()),
                            Ok(false) => Err(StoreError::Unavailable(reason.clone())),
                            Err(_) => Err(StoreError::Interrupted),
                        },
                        refused => refused,
                    };
                    let _ = p.done.send(a);
                }
            }
        }
    }

    /// One transaction per issuance, each answered with its own outcome.
    async fn write_each(&self, pending: Vec<Pending>) {
        for p in pending {
            let a = self.write_one(&p.job).await;
            let _ = p.done.send(a);
        }
    }

    /// Whether a certificate with this id is stored.
    async fn certificate_stored(&self, id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM certificates WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// One transaction for a group: the claims (those already used are refused), then the
    /// certificates and audit lines of the issuances whose claim held.
    async fn write_group(
        &self,
        group: &[Pending],
    ) -> Result<Vec<Result<(), StoreError>>, GroupFailure> {
        let mut tx = self.pool.begin().await.map_err(GroupFailure::from)?;
        // In marca order, so two instances claiming the same marche never wait on each other
        // in a cycle.
        let mut claims: Vec<(&str, &IssueJob)> = group
            .iter()
            .filter_map(|p| p.job.marca.as_deref().map(|m| (m, &p.job)))
            .collect();
        claims.sort_by(|a, b| a.0.cmp(b.0));
        let mut claimed = HashSet::new();
        if !claims.is_empty() {
            let sql = format!(
                "INSERT INTO used_marche (marca, certificate_id, used_at) VALUES {} ON CONFLICT (marca) DO NOTHING RETURNING marca",
                placeholders(claims.len(), 3)
            );
            let mut q = sqlx::query(&sql);
            for (m, job) in &claims {
                q = q.bind(*m).bind(job.id.as_str()).bind(job.issued_at);
            }
            for row in q.fetch_all(&mut *tx).await.map_err(GroupFailure::from)? {
                claimed.insert(
                    row.try_get::<String, _>("marca")
                        .map_err(GroupFailure::from)?,
                );
            }
        }
        let answers: Vec<Result<(), StoreError>> = group
            .iter()
            .map(|p| match &p.job.marca {
                Some(m) if !claimed.contains(m) => {
                    // Used already (by another instance, or before a restart): remembered, so
                    // the next attempt is refused before anything is signed.
                    self.claimed.insert(m.clone(), ());
                    Err(StoreError::MarcaAlreadyUsed(m.clone()))
                }
                _ => Ok(()),
            })
            .collect();
        let ok: Vec<&IssueJob> = group
            .iter()
            .zip(&answers)
            .filter(|(_, a)| a.is_ok())
            .map(|(p, _)| &p.job)
            .collect();
        let mut stored = Vec::new();
        if !ok.is_empty() {
            let sql = format!(
                "INSERT INTO certificates (id, verification_code, municipality, kind, subject, requester, stamp, marca, destination, issued_at, sha256, pdf, pdf_parts) VALUES {}",
                placeholders(ok.len(), 13)
            );
            let mut q = sqlx::query(&sql);
            for j in &ok {
                q = j.bind_certificate(q);
            }
            q.execute(&mut *tx).await.map_err(GroupFailure::from)?;
            let now;
            (stored, now) = self
                .store_parts(&mut tx, ok.iter().copied())
                .await
                .map_err(|e| match e {
                    StoreError::Database(e) => GroupFailure::from(e),
                    // A stored part that is not what its key says: each issuance alone
                    // gets that answer.
                    _ => GroupFailure::Refused,
                })?;
            // Read after a write, so on SQLite the transaction holds the write lock: the
            // version the commit follows. A registry changed since an issuance's records were
            // read: each issuance alone gets its answer.
            if ok.iter().any(|j| j.stale(now.as_ref())) {
                return Err(GroupFailure::Refused);
            }
            let sql = format!(
                "INSERT INTO audit_log (actor, auth_level, action, subject, at, remote_addr, outcome) VALUES {}",
                placeholders(ok.len(), 7)
            );
            let mut q = sqlx::query(&sql);
            for j in &ok {
                q = bind_audit(q, &j.audit);
            }
            q.execute(&mut *tx).await.map_err(GroupFailure::from)?;
        }
        if let Err(e) = tx.commit().await {
            return Err(GroupFailure::Commit {
                answers,
                reason: e.to_string(),
            });
        }
        self.remember_parts(stored);
        for (p, a) in group.iter().zip(&answers) {
            if let (Some(m), Ok(())) = (&p.job.marca, a) {
                self.claimed.insert(m.clone(), ());
            }
        }
        Ok(answers)
    }

    /// One issuance in its own transaction.
    async fn write_one(&self, j: &IssueJob) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(m) = &j.marca {
            // The first write of the transaction: on SQLite it takes the write lock at once.
            let claimed = sqlx::query(
                "INSERT INTO used_marche (marca, certificate_id, used_at) VALUES ($1, $2, $3)",
            )
            .bind(m.as_str())
            .bind(j.id.as_str())
            .bind(j.issued_at)
            .execute(&mut *tx)
            .await;
            match claimed {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    drop(tx);
                    self.claimed.insert(m.clone(), ());
                    return Err(StoreError::MarcaAlreadyUsed(m.clone()));
                }
                Err(e) => return Err(e.into()),
            }
        }
        j.bind_certificate(sqlx::query(
            "INSERT INTO certificates (id, verification_code, municipality, kind, subject, requester, stamp, marca, destination, issued_at, sha256, pdf, pdf_parts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        ))
        .execute(&mut *tx)
        .await?;
        let (stored, now) = self.store_parts(&mut tx, [j]).await?;
        if j.stale(now.as_ref()) {
            return Err(StoreError::RegistryChanged);
        }
        insert_audit(&mut *tx, &j.audit).await?;
        tx.commit().await?;
        self.remember_parts(stored);
        if let Some(m) = &j.marca {
            self.claimed.insert(m.clone(), ());
        }
        Ok(())
    }

    /// Makes sure the shared parts of `jobs` are in `pdf_parts`, inside `tx` (after a write, so
    /// on SQLite the transaction already holds the write lock). Every transaction looks them up:
    /// a part missing (a restored backup, a failover, a hand deletion) is inserted again, so no
    /// certificate is committed without its parts. A part there but not yet known to this store
    /// is compared byte for byte. Returns the parts to remember once `tx` commits, and the
    /// registry's version when a job's records carry one to check (else `None`).
    async fn store_parts<'j>(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        jobs: impl IntoIterator<Item = &'j IssueJob>,
    ) -> Result<(Vec<parts::Part>, Option<String>), StoreError> {
        let mut used: Vec<&parts::Part> = Vec::new();
        let mut check_version = false;
        for j in jobs {
            check_version |= j.registry_version.is_some();
            for p in &j.parts {
                if !used.iter().any(|t| t.sha256 == p.sha256) {
                    used.push(p);
                }
            }
        }
        // The parts there and (when a job checks it) the registry's version, in one round trip
        // on SQLite (where the transaction already holds the write lock, so the version holds
        // until the commit). On PostgreSQL the version row is read FOR SHARE, in a statement
        // of its own (no lock in a UNION): an import's update of it then waits for this
        // transaction to end.
        let (locked, in_union) = match self.engine {
            Engine::Postgres => (check_version, false),
            Engine::Sqlite => (false, check_version),
        };
        let version_sql =
            "SELECT 'version' AS what, version AS value FROM registry_version WHERE id = 1";
        let mut present = HashSet::new();
        let mut version = None;
        let mut read = |rows: Vec<AnyRow>| -> Result<(), StoreError> {
            for r in rows {
                let value: Option<String> = r.try_get("value")?;
                if r.try_get::<String, _>("what")? == "version" {
                    version = value;
                } else if let Some(v) = value {
                    present.insert(v);
                }
            }
            Ok(())
        };
        if locked {
            read(
                sqlx::query(&format!("{version_sql} FOR SHARE"))
                    .fetch_all(&mut **tx)
                    .await?,
            )?;
        }
        let sql = match (used.is_empty(), in_union) {
            (true, false) => None,
            (true, true) => Some(version_sql.to_string()),
            (false, _) => Some(format!(
                "SELECT 'part' AS what, sha256 AS value FROM pdf_parts WHERE sha256 IN ({}){}",
                (1..=used.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if in_union {
                    format!(" UNION ALL {version_sql}")
                } else {
                    String::new()
                }
            )),
        };
        if let Some(sql) = sql {
            let mut q = sqlx::query(&sql);
            for p in &used {
                q = q.bind(p.sha256.as_str());
            }
            read(q.fetch_all(&mut **tx).await?)?;
        }
        let mut stored = Vec::new();
        for p in used {
            if !present.contains(&p.sha256) {
                sqlx::query(
                    "INSERT INTO pdf_parts (sha256, bytes) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
                )
                .bind(p.sha256.as_str())
                .bind(&p.bytes[..])
                .execute(&mut **tx)
                .await?;
            } else if !self.parts.contains(&p.sha256) {
                let row = sqlx::query("SELECT bytes FROM pdf_parts WHERE sha256 = $1")
                    .bind(p.sha256.as_str())
                    .fetch_one(&mut **tx)
                    .await?;
                if row.try_get::<Vec<u8>, _>("bytes")?[..] != p.bytes[..] {
                    return Err(StoreError::Corrupt {
                        table: "pdf_parts",
                        reason: format!("part {} is not what its SHA-256 says", p.sha256),
                    });
                }
            }
            stored.push(p.clone());
        }
        Ok((stored, version))
    }

    /// Remembers parts whose transaction committed.
    fn remember_parts(&self, stored: Vec<parts::Part>) {
        for p in stored {
            self.parts.insert(p.sha256, p.bytes);
        }
    }

    /// The bytes of a stored part, checked against its SHA-256 (kept in memory once read).
    async fn part(&self, sha256: &str) -> Result<Arc<[u8]>, StoreError> {
        if let Some(bytes) = self.parts.get(sha256) {
            return Ok(bytes);
        }
        let row = sqlx::query("SELECT bytes FROM pdf_parts WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        let bad = |reason: String| StoreError::Corrupt {
            table: "pdf_parts",
            reason,
        };
        let row = row.ok_or_else(|| bad(format!("part {sha256} is missing")))?;
        let bytes: Vec<u8> = row.try_get("bytes")?;
        if hex::encode(Sha256::digest(&bytes)) != sha256 {
            return Err(bad(format!("part {sha256} does not match its SHA-256")));
        }
        let bytes: Arc<[u8]> = Arc::from(bytes);
        self.parts.insert(sha256.to_string(), Arc::clone(&bytes));
        Ok(bytes)
    }

    /// A certificate from its row: its PDF put back together from its own bytes and its shared
    /// parts, and checked against its SHA-256.
    async fn certificate_from_row(&self, r: &AnyRow) -> Result<StoredCertificate, StoreError> {
        let own: Vec<u8> = r.try_get("pdf")?;
        let pdf = match r.try_get::<Option<String>, _>("pdf_parts")? {
            None => own,
            Some(column) => {
                let mut splices = Vec::new();
                for (at, sha256) in parts::parse_column(&column)? {
                    splices.push((at, self.part(&sha256).await?));
                }
                parts::join(&own, &splices)?
            }
        };
        let sha256: String = r.try_get("sha256")?;
        if hex::encode(Sha256::digest(&pdf)) != sha256 {
            return Err(StoreError::Corrupt {
                table: "certificates",
                reason: "the PDF does not match its SHA-256".into(),
            });
        }
        certificate_fields(r, pdf)
    }

    /// How much the certificates take: their rows' bytes, and the shared parts stored once.
    pub async fn archive_size(&self) -> Result<ArchiveSize, StoreError> {
        let c = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(pdf)), 0) AS b FROM certificates",
        )
        .fetch_one(&self.pool)
        .await?;
        let p = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(bytes)), 0) AS b FROM pdf_parts",
        )
        .fetch_one(&self.pool)
        .await?;
        let count = |r: &AnyRow, col: &str| -> Result<u64, StoreError> {
            let v: i64 = r.try_get(col)?;
            u64::try_from(v).map_err(|_| StoreError::Corrupt {
                table: "certificates",
                reason: format!("{col} is {v}"),
            })
        };
        Ok(ArchiveSize {
            certificates: count(&c, "n")?,
            certificate_bytes: count(&c, "b")?,
            shared_parts: count(&p, "n")?,
            shared_part_bytes: count(&p, "b")?,
        })
    }

    /// The certificate with this id.
    pub async fn certificate(&self, id: &str) -> Result<Option<StoredCertificate>, StoreError> {
        let row = sqlx::query(
            "SELECT id, verification_code, municipality, kind, subject, requester, stamp, destination, issued_at, sha256, pdf, pdf_parts \
             FROM certificates WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Some(self.certificate_from_row(&r).await?)),
            None => Ok(None),
        }
    }

    /// The certificate with this id, its sealed PDF included, if `code` is its verification code
    /// (the sealed original the QR code's page offers). The code is checked first (constant-time
    /// comparison): the PDF is read only for a right code.
    pub async fn verify_certificate(
        &self,
        id: &str,
        code: &str,
    ) -> Result<Option<StoredCertificate>, StoreError> {
        if !self.verification_code_matches(id, code).await? {
            return Ok(None);
        }
        self.certificate(id).await
    }

    /// As [`Store::verify_certificate`] without reading the PDF (what the verification page
    /// shows): the answer's `pdf` is empty, `sha256` is the stored hash of the original.
    pub async fn verify_certificate_metadata(
        &self,
        id: &str,
        code: &str,
    ) -> Result<Option<StoredCertificate>, StoreError> {
        if !self.verification_code_matches(id, code).await? {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT id, verification_code, municipality, kind, subject, requester, stamp, destination, issued_at, sha256 \
             FROM certificates WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| certificate_fields(&r, Vec::new())).transpose()
    }

    async fn verification_code_matches(&self, id: &str, code: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT verification_code FROM certificates WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(false) };
        let stored: String = row.try_get("verification_code")?;
        let a = stored.as_bytes();
        let b = code.trim().to_ascii_uppercase();
        let b = b.as_bytes();
        Ok(a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0)
    }

    /// Ids of the certificates stored, oldest first (for checks and audits).
    pub async fn certificate_ids(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM certificates ORDER BY issued_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("id")?))
            .collect()
    }

    /// Every used marca with the id of its certificate.
    pub async fn used_marche(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT marca, certificate_id FROM used_marche ORDER BY marca")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("marca")?,
                    r.try_get::<String, _>("certificate_id")?,
                ))
            })
            .collect()
    }

    // ---- self-declarations ----

    /// Records a produced self-declaration (metadata only) with its audit line.
    pub async fn record_self_declaration(
        &self,
        declaration: &SelfDeclarationRecord,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO self_declarations (id, declarant, facts, issued_at, sha256) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(declaration.id.as_str())
        .bind(declaration.declarant.as_str())
        .bind(declaration.facts.join(","))
        .bind(unix(declaration.issued_at))
        .bind(declaration.sha256.as_str())
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut *tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The self-declarations of a declarant, oldest first.
    pub async fn self_declarations(
        &self,
        declarant: &str,
    ) -> Result<Vec<SelfDeclarationRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, declarant, facts, issued_at, sha256 FROM self_declarations WHERE declarant = $1 ORDER BY issued_at, id",
        )
        .bind(declarant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let facts: String = r.try_get("facts")?;
                Ok(SelfDeclarationRecord {
                    id: r.try_get("id")?,
                    declarant: r.try_get("declarant")?,
                    facts: facts
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                    issued_at: from_unix("self_declarations", r.try_get("issued_at")?)?,
                    sha256: r.try_get("sha256")?,
                })
            })
            .collect()
    }

    // ---- sessions ----
    //
    // The table keeps the SHA-256 of each session id, never the id itself: whoever reads the
    // table (a backup, a replica, an SQL injection elsewhere) cannot use the sessions.

    /// Stores a new session (its id as SHA-256).
    pub async fn create_session(&self, s: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, codice_fiscale, auth_level, csrf_token, created_at, expires_at, data) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(session_key(&s.id))
        .bind(s.codice_fiscale.as_str())
        .bind(s.auth_level)
        .bind(s.csrf_token.as_str())
        .bind(unix(s.created_at))
        .bind(unix(s.expires_at))
        .bind(s.data.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session with this id, if it has not expired at `now`.
    pub async fn session(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT codice_fiscale, auth_level, csrf_token, created_at, expires_at, data FROM sessions WHERE id = $1 AND expires_at > $2",
        )
        .bind(session_key(id))
        .bind(unix(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Session {
                id: id.to_string(),
                codice_fiscale: r.try_get("codice_fiscale")?,
                auth_level: r.try_get("auth_level")?,
                csrf_token: r.try_get("csrf_token")?,
                created_at: from_unix("sessions", r.try_get("created_at")?)?,
                expires_at: from_unix("sessions", r.try_get("expires_at")?)?,
                data: r.try_get("data")?,
            })
        })
        .transpose()
    }

    /// Ends a session.
    pub async fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(session_key(id))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes the sessions expired at `now`; returns how many.
    pub async fn purge_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(unix(now))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    // ---- audit ----

    /// Appends one line to the audit log.
    pub async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert_audit(&mut *conn, entry).await
    }

    /// The newest `limit` lines of the audit log, oldest first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT actor, auth_level, action, subject, at, remote_addr, outcome FROM \
             (SELECT seq, actor, auth_level, action, subject, at, remote_addr, outcome FROM audit_log ORDER BY seq DESC LIMIT $1) t ORDER BY seq",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    actor: r.try_get("actor")?,
                    auth_level: r.try_get("auth_level")?,
                    action: r.try_get("action")?,
                    subject: r.try_get("subject")?,
                    at: from_unix("audit_log", r.try_get("at")?)?,
                    remote_addr: r.try_get("remote_addr")?,
                    outcome: r.try_get("outcome")?,
                })
            })
            .collect()
    }

    /// Runs one raw statement (tests use it to show the audit log refuses updates).
    pub async fn execute_raw(&self, sql: &str) -> Result<u64, StoreError> {
        Ok(self.pool.execute(sql).await?.rows_affected())
    }
}

/// A person's rows from the database: the person with municipality and family, then the
/// family's people.
async fn read_record_rows(
    conn: &mut sqlx::AnyConnection,
    code: &str,
    cf: &CodiceFiscale,
) -> Result<Option<RecordRows>, StoreError> {
    // Two round trips: the person with municipality and family, then the family's people.
    let row = sqlx::query(
        "SELECT p.data AS person, m.data AS municipality, f.data AS family \
         FROM people p JOIN municipalities m ON m.cadastral_code = p.municipality \
         LEFT JOIN families f ON f.municipality = p.municipality AND f.id = p.family_id \
         WHERE p.municipality = $1 AND p.codice_fiscale = $2",
    )
    .bind(code)
    .bind(cf.as_str().to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let person: Person =
        serde_json::from_str(&row.try_get::<String, _>("person")?).map_err(corrupt("people"))?;
    let municipality: Municipality =
        serde_json::from_str(&row.try_get::<String, _>("municipality")?)
            .map_err(corrupt("municipalities"))?;
    let family: Option<Family> = row
        .try_get::<Option<String>, _>("family")?
        .map(|f| serde_json::from_str(&f).map_err(corrupt("families")))
        .transpose()?;
    let members = match &family {
        // A convivenza's residents are not each other's family (see `build_record`).
        Some(f) if f.convivenza => Vec::new(),
        Some(f) => {
            let rows = sqlx::query(
                "SELECT data FROM people WHERE municipality = $1 AND family_id = $2 ORDER BY codice_fiscale",
            )
            .bind(code)
            .bind(f.id.as_str())
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| {
                    serde_json::from_str::<Person>(&r.try_get::<String, _>("data")?)
                        .map_err(corrupt("people"))
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        None => Vec::new(),
    };
    Ok(Some(RecordRows {
        municipality,
        person,
        family,
        family_people: members,
    }))
}

/// The registry's version (a new random value, set by triggers, on every change of its tables;
/// `None` if its row is gone, and then nothing is kept) and whether `marca` was used, in one
/// round trip.
async fn registry_version(
    conn: &mut sqlx::AnyConnection,
    marca: Option<&str>,
) -> Result<(Option<String>, bool), StoreError> {
    let row = sqlx::query(
        "SELECT (SELECT version FROM registry_version WHERE id = 1) AS version, \
         (SELECT COUNT(*) FROM used_marche WHERE marca = $1) AS used",
    )
    .bind(marca)
    .fetch_one(&mut *conn)
    .await?;
    Ok((
        row.try_get::<Option<String>, _>("version")?,
        row.try_get::<i64, _>("used")? > 0,
    ))
}

async fn insert_audit<'c, E>(exec: E, a: &AuditEntry) -> Result<(), StoreError>
where
    E: Executor<'c, Database = sqlx::Any>,
{
    bind_audit(
        sqlx::query(
            "INSERT INTO audit_log (actor, auth_level, action, subject, at, remote_addr, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        ),
        a,
    )
    .execute(exec)
    .await?;
    Ok(())
}

/// What the sessions table keeps of a session id: its SHA-256, hex.
pub(crate) fn session_key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// A certificate's row with `pdf` (read and checked by the caller, or empty).
fn certificate_fields(r: &AnyRow, pdf: Vec<u8>) -> Result<StoredCertificate, StoreError> {
    let bad = |reason: String| StoreError::Corrupt {
        table: "certificates",
        reason,
    };
    let kind: i64 = r.try_get("kind")?;
    let destination: i64 = r.try_get("destination")?;
    let stamp: String = r.try_get("stamp")?;
    let sha256: String = r.try_get("sha256")?;
    Ok(StoredCertificate {
        id: r.try_get("id")?,
        verification_code: r.try_get("verification_code")?,
        municipality: r.try_get("municipality")?,
        kind: u16::try_from(kind)
            .ok()
            .and_then(|k| CertificateKind::from_code(k).ok())
            .ok_or_else(|| bad(format!("kind {kind}")))?,
        subject: r.try_get("subject")?,
        requester: r.try_get("requester")?,
        stamp: serde_json::from_str(&stamp).map_err(corrupt("certificates"))?,
        destination: u16::try_from(destination)
            .ok()
            .and_then(|k| Destination::from_code(k).ok())
            .ok_or_else(|| bad(format!("destination {destination}")))?,
        issued_at: from_unix("certificates", r.try_get("issued_at")?)?,
        sha256,
        pdf,
    })
}
