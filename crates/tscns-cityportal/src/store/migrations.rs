//! Versioned migrations, one list per engine, run in order when the store opens. A version once
//! released is never edited: changes come as a new version.

use sqlx::{AnyPool, Executor, Row};

use super::{Engine, StoreError};

/// One migration: version, name, statements for SQLite, statements for PostgreSQL.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static [&'static str],
    postgres: &'static [&'static str],
}

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "registry, certificates, marche, self-declarations, sessions, audit log",
    sqlite: &[
        "CREATE TABLE municipalities (cadastral_code TEXT PRIMARY KEY, data TEXT NOT NULL)",
        "CREATE TABLE families (municipality TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (municipality, id))",
        "CREATE TABLE people (municipality TEXT NOT NULL, codice_fiscale TEXT NOT NULL, family_id TEXT, data TEXT NOT NULL, PRIMARY KEY (municipality, codice_fiscale))",
        "CREATE INDEX people_family ON people (municipality, family_id)",
        "CREATE TABLE certificates (id TEXT PRIMARY KEY, verification_code TEXT NOT NULL UNIQUE, municipality TEXT NOT NULL, kind INTEGER NOT NULL, subject TEXT NOT NULL, requester TEXT NOT NULL, stamp TEXT NOT NULL, marca TEXT UNIQUE, destination INTEGER NOT NULL, issued_at INTEGER NOT NULL, sha256 TEXT NOT NULL, pdf BLOB NOT NULL)",
        "CREATE TABLE used_marche (marca TEXT PRIMARY KEY, certificate_id TEXT NOT NULL, used_at INTEGER NOT NULL)",
        "CREATE TABLE self_declarations (id TEXT PRIMARY KEY, declarant TEXT NOT NULL, facts TEXT NOT NULL, issued_at INTEGER NOT NULL, sha256 TEXT NOT NULL)",
        "CREATE TABLE sessions (id TEXT PRIMARY KEY, codice_fiscale TEXT NOT NULL, auth_level INTEGER NOT NULL, csrf_token TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, data TEXT NOT NULL)",
        "CREATE TABLE audit_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, actor TEXT NOT NULL, auth_level INTEGER NOT NULL, action TEXT NOT NULL, subject TEXT, at INTEGER NOT NULL, remote_addr TEXT NOT NULL, outcome TEXT NOT NULL)",
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    ],
    postgres: &[
        "CREATE TABLE municipalities (cadastral_code TEXT PRIMARY KEY, data TEXT NOT NULL)",
        "CREATE TABLE families (municipality TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (municipality, id))",
        "CREATE TABLE people (municipality TEXT NOT NULL, codice_fiscale TEXT NOT NULL, family_id TEXT, data TEXT NOT NULL, PRIMARY KEY (municipality, codice_fiscale))",
        "CREATE INDEX people_family ON people (municipality, family_id)",
        "CREATE TABLE certificates (id TEXT PRIMARY KEY, verification_code TEXT NOT NULL UNIQUE, municipality TEXT NOT NULL, kind BIGINT NOT NULL, subject TEXT NOT NULL, requester TEXT NOT NULL, stamp TEXT NOT NULL, marca TEXT UNIQUE, destination BIGINT NOT NULL, issued_at BIGINT NOT NULL, sha256 TEXT NOT NULL, pdf BYTEA NOT NULL)",
        "CREATE TABLE used_marche (marca TEXT PRIMARY KEY, certificate_id TEXT NOT NULL, used_at BIGINT NOT NULL)",
        "CREATE TABLE self_declarations (id TEXT PRIMARY KEY, declarant TEXT NOT NULL, facts TEXT NOT NULL, issued_at BIGINT NOT NULL, sha256 TEXT NOT NULL)",
        "CREATE TABLE sessions (id TEXT PRIMARY KEY, codice_fiscale TEXT NOT NULL, auth_level BIGINT NOT NULL, csrf_token TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, data TEXT NOT NULL)",
        "CREATE TABLE audit_log (seq BIGSERIAL PRIMARY KEY, actor TEXT NOT NULL, auth_level BIGINT NOT NULL, action TEXT NOT NULL, subject TEXT, at BIGINT NOT NULL, remote_addr TEXT NOT NULL, outcome TEXT NOT NULL)",
        "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
        "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
    ],
}, Migration {
    version: 2,
    name: "shared parts of certificate PDFs stored once (see store::parts)",
    sqlite: &[
        "CREATE TABLE pdf_parts (sha256 TEXT PRIMARY KEY, bytes BLOB NOT NULL)",
        "ALTER TABLE certificates ADD COLUMN pdf_parts TEXT",
        "CREATE TRIGGER pdf_parts_no_update BEFORE UPDATE ON pdf_parts BEGIN SELECT RAISE(ABORT, 'stored PDF parts are never changed'); END",
        "CREATE TRIGGER pdf_parts_no_delete BEFORE DELETE ON pdf_parts BEGIN SELECT RAISE(ABORT, 'stored PDF parts are never changed'); END",
    ],
    postgres: &[
        "CREATE TABLE pdf_parts (sha256 TEXT PRIMARY KEY, bytes BYTEA NOT NULL)",
        "ALTER TABLE certificates ADD COLUMN pdf_parts TEXT",
        "CREATE FUNCTION pdf_parts_immutable() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'stored PDF parts are never changed'; END $$",
        "CREATE TRIGGER pdf_parts_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON pdf_parts FOR EACH STATEMENT EXECUTE FUNCTION pdf_parts_immutable()",
    ],
}, Migration {
    version: 3,
    name: "registry version, a new random value on every change of the registry (records are cached by it); parts and audit lines not replaceable",
    sqlite: &[
        "CREATE TABLE registry_version (id INTEGER PRIMARY KEY CHECK (id = 1), version TEXT NOT NULL)",
        "INSERT INTO registry_version (id, version) VALUES (1, lower(hex(randomblob(16))))",
        "CREATE TRIGGER municipalities_insert_version AFTER INSERT ON municipalities BEGIN UPDATE registry_version SET version = lower(hex(randomblob(16))); END",
        "CREATE TRIGGER municipalities_update_version AFTER UPDATE ON municipalities BEGIN UPDATE registry_version SET version = lower(hex(randomblob(16))); END",
        "CREATE TRIGGER municipalities_delete_version AFTER DELETE ON municipalities BEGIN UPDATE registry_version SET version = lower(hex(randomblob(16))); END",
        "CREATE TRIGGER families_insert_version AFTER INSERT ON families BEGIN UPDATE registry_version SET version = lower(hex(randomblob(16))); END",
        "CREATE TRIGGER families_update_version AFTER UPDATE ON families BEGIN UPDATE registry_version SET version = lower(hex(randomblob(16))); END",
        "CREATE TRIGGER families_delete_version AFTER DELETE ON families BEGIN UPDATE registry_version SET version = lower(hex(randomblob(16))); END",
        "CREATE TRIGGER people_insert_version AFTER INSERT ON people BEGIN UPDATE registry_version SET version = lower(hex(randomblob(16))); END",
        "CREATE TRIGGER people_update_version AFTER UPDATE ON people BEGIN UPDATE registry_version SET version = lower(hex(randomblob(16))); END",
        "CREATE TRIGGER people_delete_version AFTER DELETE ON people BEGIN UPDATE registry_version SET version = lower(hex(randomblob(16))); END",
        // INSERT OR REPLACE deletes without DELETE triggers: an existing part is kept as it is,
        // an existing audit line is not replaced.
        "CREATE TRIGGER pdf_parts_no_replace BEFORE INSERT ON pdf_parts WHEN EXISTS (SELECT 1 FROM pdf_parts WHERE sha256 = NEW.sha256) BEGIN SELECT RAISE(IGNORE); END",
        "CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log WHEN EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.seq) BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    ],
    postgres: &[
        "CREATE TABLE registry_version (id BIGINT PRIMARY KEY CHECK (id = 1), version TEXT NOT NULL)",
        "INSERT INTO registry_version (id, version) VALUES (1, gen_random_uuid()::text)",
        "CREATE FUNCTION new_registry_version() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE registry_version SET version = gen_random_uuid()::text; RETURN NULL; END $$",
        // ALWAYS: also when rows come from logical replication or with session_replication_role = replica.
        "CREATE TRIGGER municipalities_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON municipalities FOR EACH STATEMENT EXECUTE FUNCTION new_registry_version()",
        "ALTER TABLE municipalities ENABLE ALWAYS TRIGGER municipalities_version",
        "CREATE TRIGGER families_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON families FOR EACH STATEMENT EXECUTE FUNCTION new_registry_version()",
        "ALTER TABLE families ENABLE ALWAYS TRIGGER families_version",
        "CREATE TRIGGER people_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON people FOR EACH STATEMENT EXECUTE FUNCTION new_registry_version()",
        "ALTER TABLE people ENABLE ALWAYS TRIGGER people_version",
    ],
}];

/// The newest version this program knows.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Applies the pending migrations, each in its own transaction. On PostgreSQL an advisory lock
/// keeps two instances starting together from racing.
pub(crate) async fn run(pool: &AnyPool, engine: Engine) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    if engine == Engine::Postgres {
        // Arbitrary constant key for this crate's migrations.
        conn.execute("SELECT pg_advisory_lock(7206011)").await?;
    }
    let result = apply(&mut conn, engine).await;
    if engine == Engine::Postgres {
        conn.execute("SELECT pg_advisory_unlock(7206011)").await?;
    }
    result
}

async fn apply(conn: &mut sqlx::AnyConnection, engine: Engine) -> Result<(), StoreError> {
    let create = match engine {
        Engine::Sqlite => {
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
        }
        Engine::Postgres => {
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL)"
        }
    };
    conn.execute(create).await?;
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        .fetch_one(&mut *conn)
        .await?;
    let current: i64 = row.try_get("v")?;
    if current > latest() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known: latest(),
        });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let err = |source| StoreError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(err)?;
        let statements = match engine {
            Engine::Sqlite => m.sqlite,
            Engine::Postgres => m.postgres,
        };
        for s in statements {
            tx.execute(*s).await.map_err(err)?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
            .bind(m.version)
            .bind(m.name)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
    }
    Ok(())
}
