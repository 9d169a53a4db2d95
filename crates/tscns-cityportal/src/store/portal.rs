//! What the portal server keeps besides the library's tables: rate-limit counters, redeemed
//! Cohesion callbacks, session renewal, and per-citizen listings. Its tables have their own
//! versioned migrations (table `portal_schema_migrations`), run by [`Store::open_portal`], so
//! that a store used only by the library never gets them.

use sqlx::{Executor, Row};
use time::OffsetDateTime;

use super::{from_unix, unix, AuditEntry, Engine, StoreError, StoredCertificate};

/// The portal's migrations: (version, name, SQLite statements, PostgreSQL statements).
type PortalMigration = (
    i64,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

const PORTAL_MIGRATIONS: &[PortalMigration] = &[(
    1,
    "rate limits, redeemed callbacks, audit and certificate indexes",
    &[
        "CREATE TABLE rate_limits (bucket TEXT NOT NULL, window_start INTEGER NOT NULL, hits INTEGER NOT NULL, PRIMARY KEY (bucket, window_start))",
        "CREATE TABLE redeemed_callbacks (digest TEXT PRIMARY KEY, until INTEGER NOT NULL)",
        "CREATE INDEX certificates_requester ON certificates (requester)",
        "CREATE INDEX certificates_subject ON certificates (subject)",
        "CREATE INDEX audit_log_subject ON audit_log (subject)",
        "CREATE INDEX audit_log_actor ON audit_log (actor)",
    ],
    &[
        "CREATE TABLE rate_limits (bucket TEXT NOT NULL, window_start BIGINT NOT NULL, hits BIGINT NOT NULL, PRIMARY KEY (bucket, window_start))",
        "CREATE TABLE redeemed_callbacks (digest TEXT PRIMARY KEY, until BIGINT NOT NULL)",
        "CREATE INDEX certificates_requester ON certificates (requester)",
        "CREATE INDEX certificates_subject ON certificates (subject)",
        "CREATE INDEX audit_log_subject ON audit_log (subject)",
        "CREATE INDEX audit_log_actor ON audit_log (actor)",
    ],
), (
    2,
    "sessions keyed by the SHA-256 of their id (sessions stored before are dropped)",
    &["DELETE FROM sessions"],
    &["DELETE FROM sessions"],
)];

/// The answer of [`super::Store::hit_rate_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Under the limit: go on.
    Allowed,
    /// Over the limit: retry after this many seconds.
    Limited {
        /// Seconds until the window ends.
        retry_after: u64,
    },
}

impl super::Store {
    /// Opens the store like [`Store::open`](super::Store::open) and also runs the portal
    /// server's migrations.
    pub async fn open_portal(url: &str) -> Result<super::Store, StoreError> {
        let store = super::Store::open(url).await?;
        store.migrate_portal().await?;
        Ok(store)
    }

    async fn migrate_portal(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        if self.engine == Engine::Postgres {
            // Arbitrary constant key for the portal's migrations (not the library's).
            conn.execute("SELECT pg_advisory_lock(7206012)").await?;
        }
        let result = async {
            let create = match self.engine {
                Engine::Sqlite => "CREATE TABLE IF NOT EXISTS portal_schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)",
                Engine::Postgres => "CREATE TABLE IF NOT EXISTS portal_schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL)",
            };
            conn.execute(create).await?;
            let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM portal_schema_migrations")
                .fetch_one(&mut *conn)
                .await?;
            let current: i64 = row.try_get("v")?;
            let known = PORTAL_MIGRATIONS.last().map_or(0, |m| m.0);
            if current > known {
                return Err(StoreError::SchemaTooNew { found: current, known });
            }
            for (version, name, sqlite, postgres) in PORTAL_MIGRATIONS.iter().filter(|m| m.0 > current) {
                let err = |source| StoreError::Migration { version: *version, name, source };
                let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(err)?;
                let statements = match self.engine {
                    Engine::Sqlite => sqlite,
                    Engine::Postgres => postgres,
                };
                for s in statements.iter() {
                    tx.execute(*s).await.map_err(err)?;
                }
                sqlx::query("INSERT INTO portal_schema_migrations (version, name) VALUES ($1, $2)")
                    .bind(*version)
                    .bind(*name)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                tx.commit().await.map_err(err)?;
            }
            Ok(())
        }
        .await;
        if self.engine == Engine::Postgres {
            conn.execute("SELECT pg_advisory_unlock(7206012)").await?;
        }
        result
    }

    /// Counts one hit on `bucket` (e.g. `issue:cf:RSSMRA80A01H501U`) in the fixed window of
    /// `window_secs` seconds that contains `now`; over `limit` hits in that window the answer is
    /// [`RateDecision::Limited`]. One atomic upsert, so the limit holds across instances.
    pub async fn hit_rate_limit(
        &self,
        bucket: &str,
        limit: u32,
        window_secs: u32,
        now: OffsetDateTime,
    ) -> Result<RateDecision, StoreError> {
        let window = i64::from(window_secs.max(1));
        let t = unix(now);
        let start = t - t.rem_euclid(window);
        let row = sqlx::query(
            "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, 1) \
             ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limits.hits + 1 RETURNING hits",
        )
        .bind(bucket)
        .bind(start)
        .fetch_one(&self.pool)
        .await?;
        let hits: i64 = row.try_get("hits")?;
        if hits > i64::from(limit) {
            Ok(RateDecision::Limited {
                retry_after: u64::try_from(start + window - t).unwrap_or(1).max(1),
            })
        } else {
            Ok(RateDecision::Allowed)
        }
    }

    /// Deletes the rate-limit windows and redeemed callbacks that ended before `now`.
    pub async fn purge_portal(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        // Windows are at most a day long.
        let a = sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
            .bind(unix(now) - 86_400)
            .execute(&self.pool)
            .await?;
        let b = sqlx::query("DELETE FROM redeemed_callbacks WHERE until < $1")
            .bind(unix(now))
            .execute(&self.pool)
            .await?;
        Ok(a.rows_affected() + b.rows_affected())
    }

    /// Claims a redeemed Cohesion callback (a digest of its session ids) until `until`: `true`
    /// the first time, `false` for a replay, whichever instance saw it first.
    pub async fn claim_callback(
        &self,
        digest: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO redeemed_callbacks (digest, until) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest)
        .bind(unix(until))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Moves a session's expiry to `expires_at` (idle renewal).
    pub async fn touch_session(
        &self,
        id: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET expires_at = $1 WHERE id = $2")
            .bind(unix(expires_at))
            .bind(super::session_key(id))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The certificates a citizen requested or is the subject of, newest first.
    pub async fn certificates_of(&self, cf: &str) -> Result<Vec<StoredCertificate>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, verification_code, municipality, kind, subject, requester, stamp, destination, issued_at, sha256, pdf, pdf_parts \
             FROM certificates WHERE requester = $1 OR subject = $1 ORDER BY issued_at DESC, id",
        )
        .bind(cf)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.certificate_from_row(r).await?);
        }
        Ok(out)
    }

    /// The audit log, oldest first, optionally only the lines by or about one codice fiscale.
    pub async fn audit_about(
        &self,
        cf: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = match cf {
            Some(cf) => {
                sqlx::query(
                    "SELECT actor, auth_level, action, subject, at, remote_addr, outcome FROM \
                     (SELECT seq, actor, auth_level, action, subject, at, remote_addr, outcome FROM audit_log \
                      WHERE actor = $1 OR subject = $1 ORDER BY seq DESC LIMIT $2) t ORDER BY seq",
                )
                .bind(cf)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => return self.audit_log(limit).await,
        };
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

    /// The cadastral codes of the municipalities imported.
    pub async fn municipality_codes(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT cadastral_code FROM municipalities ORDER BY cadastral_code")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("cadastral_code")?))
            .collect()
    }
}
