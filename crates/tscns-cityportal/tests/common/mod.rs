//! Shared by the integration tests: the engines to run against, and a sample certificate row.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use sha2::{Digest, Sha256};
use sqlx::Executor;
use time::OffsetDateTime;
use tscns_cityportal::domain::{CertificateKind, Destination, MarcaId, Stamp};
use tscns_cityportal::store::{AuditEntry, Store, StoredCertificate};

/// Where the tests find PostgreSQL (scripts/test exports it).
pub const POSTGRES_ENV: &str = "TSCNS_TEST_POSTGRES_URL";

/// A fresh, empty database on the test PostgreSQL; fails with how to start one.
pub async fn fresh_postgres() -> String {
    let base = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_ENV} is not set: run scripts/test, or start a private server with \
             `bash -c '. scripts/lib.sh; tscns_start_postgres; echo $TSCNS_TEST_POSTGRES_URL'` and export it"
        )
    });
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {base} ({e}): run scripts/test or start it with scripts/lib.sh's tscns_start_postgres"));
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).unwrap();
    let name: String = format!(
        "tscns_{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    );
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}

/// A fresh SQLite store URL in `dir`.
pub fn fresh_sqlite(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("portal.db").display())
}

/// The engines every store test runs on: SQLite always, PostgreSQL with `system-tests`.
pub async fn engines(dir: &tempfile::TempDir) -> Vec<String> {
    let mut v = vec![fresh_sqlite(dir)];
    if cfg!(feature = "system-tests") {
        v.push(fresh_postgres().await);
    }
    v
}

/// A certificate row with made-up PDF bytes (the store does not look inside).
pub fn sample_certificate(marca: Option<&str>, pdf: Vec<u8>) -> StoredCertificate {
    let ids = Store::new_certificate_ids("H769").unwrap();
    StoredCertificate {
        id: ids.id,
        verification_code: ids.verification_code,
        municipality: "H769".into(),
        kind: CertificateKind::Residenza,
        subject: "RSSMRA80A01H501U".into(),
        requester: "RSSMRA80A01H501U".into(),
        stamp: marca.map(|m| Stamp::Marca(MarcaId::parse(m).unwrap())),
        destination: Destination::Ordinaria,
        issued_at: OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp())
            .unwrap(),
        sha256: Sha256::digest(&pdf)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        pdf,
    }
}

/// The audit line of an issue.
pub fn issue_audit(c: &StoredCertificate) -> AuditEntry {
    AuditEntry {
        actor: c.requester.clone(),
        auth_level: 4,
        action: "certificate.issue".into(),
        subject: Some(c.subject.clone()),
        at: c.issued_at,
        remote_addr: "127.0.0.1".into(),
        outcome: format!("ok {}", c.id),
    }
}

/// A throw-away seal PKI: an ECDSA CA and an RSA-2048 seal key with its certificate.
pub struct SealPki {
    /// CA certificate, DER.
    pub ca_der: Vec<u8>,
    /// CA certificate, PEM.
    pub ca_pem: String,
    /// Seal key, PKCS#8 DER.
    pub key_pkcs8: Vec<u8>,
    /// Seal certificate, DER.
    pub cert_der: Vec<u8>,
}

impl SealPki {
    /// The seal key as a [`tscns_cityportal::documents::Pkcs8Key`].
    pub fn key(&self) -> tscns_cityportal::documents::Pkcs8Key {
        tscns_cityportal::documents::Pkcs8Key::new(&self.key_pkcs8, &self.cert_der).unwrap()
    }
}

/// One seal PKI per test process (RSA key generation is slow).
pub fn seal_pki() -> &'static SealPki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    use rsa::pkcs8::EncodePrivateKey;
    static PKI: std::sync::OnceLock<SealPki> = std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name.push(DnType::CountryName, "IT");
        ca.distinguished_name
            .push(DnType::OrganizationName, "tscns test");
        ca.distinguished_name
            .push(DnType::CommonName, "tscns test CA Sigilli");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let rsa_key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let pkcs8 = rsa_key.to_pkcs8_der().unwrap().as_bytes().to_vec();
        let kp = KeyPair::from_pkcs8_der_and_sign_algo(
            &rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.clone()),
            &rcgen::PKCS_RSA_SHA256,
        )
        .unwrap();
        let mut sp = CertificateParams::new(Vec::<String>::new()).unwrap();
        sp.distinguished_name.push(DnType::CountryName, "IT");
        sp.distinguished_name.push(
            DnType::OrganizationName,
            "Comune di San Benedetto del Tronto",
        );
        sp.distinguished_name.push(
            DnType::CommonName,
            "Sigillo elettronico del Comune di San Benedetto del Tronto",
        );
        sp.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        let cert = sp.signed_by(&kp, &issuer).unwrap();
        SealPki {
            ca_der: ca_cert.der().to_vec(),
            ca_pem: ca_cert.pem(),
            key_pkcs8: pkcs8,
            cert_der: cert.der().to_vec(),
        }
    })
}

// ---- documents ----

use time::macros::datetime;
use tscns_cert::CodiceFiscale;
use tscns_cityportal::documents::{certificate_pdf, seal, CertificateContent, SealInfo};
use tscns_cityportal::domain::RegistryRecord;
use tscns_cityportal::registry::Registry;
use tscns_cityportal::store::CertificateIds;

pub const AT: OffsetDateTime = datetime!(2026-03-01 10:30:00 UTC);
pub const BASE: &str = "https://portale.comune.sanbenedettodeltronto.example";

pub fn record(cf: &str) -> RegistryRecord {
    Registry::from_json(tscns_cityportal::SAN_BENEDETTO_FIXTURE.as_bytes())
        .unwrap()
        .record(&CodiceFiscale::parse(cf).unwrap())
        .unwrap()
}

/// Asserts that `pdf` follows the PDF/A-2b rules the writer relies on.
pub fn assert_pdfa(pdf: &[u8]) {
    if let Err(problems) = tscns_cityportal::documents::pdfa::check(pdf) {
        panic!("not PDF/A-2b: {problems:#?}");
    }
}

pub fn keep(name: &str, pdf: &[u8]) {
    if let Ok(dir) = std::env::var("TSCNS_CITYPORTAL_KEEP_DIR") {
        std::fs::write(std::path::Path::new(&dir).join(name), pdf).unwrap();
    }
}

pub fn seal_info(ids: &CertificateIds) -> SealInfo {
    SealInfo {
        name: "Comune di San Benedetto del Tronto".into(),
        location: "San Benedetto del Tronto".into(),
        reason: format!("Certificato n. {} rilasciato dall'Ufficio Anagrafe", ids.id),
        signing_time: AT,
    }
}

/// The certificate PDF (not sealed) of `kind` for `cf`, at [`AT`], ordinary destination.
pub fn unsealed(
    cf: &str,
    kind: CertificateKind,
    stamp: Option<&Stamp>,
    ids: &CertificateIds,
) -> Vec<u8> {
    let rec = record(cf);
    certificate_pdf(&CertificateContent {
        record: &rec,
        kind,
        destination: Destination::Ordinaria,
        stamp,
        ids,
        issued_at: AT,
        portal_base_url: BASE,
    })
    .unwrap()
}

/// A sealed certificate of `kind` for `cf`.
pub fn sealed(
    cf: &str,
    kind: CertificateKind,
    stamp: Option<&Stamp>,
    destination: Destination,
) -> (Vec<u8>, CertificateIds) {
    let rec = record(cf);
    let ids = Store::new_certificate_ids("H769").unwrap();
    let pdf = certificate_pdf(&CertificateContent {
        record: &rec,
        kind,
        destination,
        stamp,
        ids: &ids,
        issued_at: AT,
        portal_base_url: BASE,
    })
    .unwrap();
    assert_pdfa(&pdf);
    let sealed = seal(&pdf, &seal_pki().key(), &seal_info(&ids)).unwrap();
    assert_pdfa(&sealed);
    (sealed, ids)
}
