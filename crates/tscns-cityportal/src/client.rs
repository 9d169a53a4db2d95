//! The citizen's program (feature `client`): log in to a municipal portal with the TS-CNS card
//! through Cohesion, then read the registry record, ask for sealed certificates and
//! self-declarations, and verify certificates, over the portal's JSON API (`/api/v1`).
//!
//! The login is `tscns-cohesion`'s citizen smart-card login started at the portal's `/accedi`:
//! one PIN (verify it on the card before building the key), one card signature. The portal's
//! session cookie then authenticates every request. When the caller gives the seal's CA
//! ([`LoginOptions::seal_ca_pem`]), every certificate PDF received is checked with
//! [`crate::documents::verify`] and must carry the certificate id asked for.
//!
//! ```no_run
//! # async fn f(key: std::sync::Arc<dyn tscns_tls::SigningKey>) -> Result<(), tscns_cityportal::client::ClientError> {
//! use tscns_cityportal::client::{CertificateRequest, CityPortal, LoginOptions, StampChoice};
//!
//! let options = LoginOptions::default().cohesion_host("localhost");
//! let portal = CityPortal::login("http://127.0.0.1:8080", key, options).await?;
//! println!("{}", portal.record().await?);
//! let issued = portal
//!     .request_certificate(&CertificateRequest::new("residenza")
//!         .stamp(StampChoice::Marca("01234567890123".into())))
//!     .await?;
//! std::fs::write(format!("{}.pdf", issued.id), &issued.pdf).ok();
//! portal.logout().await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tscns_cohesion::citizen::CitizenLogin;
use tscns_cohesion::Url;
use tscns_tls::reqwest;
use tscns_tls::SigningKey;

use crate::documents::{self, DocumentError, Sealed};

/// Bound on one answer's body (a certificate PDF is well under this).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Why a portal operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The Cohesion login failed (card, TLS, Cohesion's or the portal's refusal).
    #[error("login failed: {0}")]
    Login(#[from] tscns_cohesion::Error),
    /// The portal could not be reached or the connection failed.
    #[error("network: {0}")]
    Network(String),
    /// The portal refused the request and said why (`{error, message}` body).
    #[error("{message} ({error}, HTTP {status})")]
    Refused {
        /// The HTTP status (401 not logged in, 403 refusal, 404, 409 marca already used, 422
        /// bad request, 429 too many requests).
        status: u16,
        /// The portal's stable error code.
        error: String,
        /// The portal's Italian sentence for the citizen.
        message: String,
    },
    /// The portal answered something this client does not understand.
    #[error("unexpected answer from the portal: {0}")]
    Protocol(String),
    /// A PDF's seal does not verify against the seal CA the caller gave.
    #[error("the certificate's seal does not verify: {0}")]
    Seal(#[from] DocumentError),
    /// A configuration value is unusable (URL, CA file).
    #[error("{0}")]
    Config(String),
    /// A login over plain `http://` to a host that is not this machine: the session cookie and
    /// everything the portal answers would cross the network in clear. Use `https://`.
    #[error("{0} is plain http:// to a host other than this machine (loopback): use https://")]
    InsecureUrl(String),
}

impl ClientError {
    /// Whether the portal itself refused (as opposed to a login, TLS or network failure).
    pub fn is_refusal(&self) -> bool {
        matches!(self, ClientError::Refused { .. })
    }
}

/// How to log in and what to trust.
#[derive(Debug, Clone, Default)]
pub struct LoginOptions {
    /// Hosts besides the documented Cohesion ones that may receive the card's certificate (e.g.
    /// `localhost` for the emulator).
    pub cohesion_hosts: Vec<String>,
    /// CA certificates (PEM) for HTTPS, to Cohesion and to the portal; none: the system's.
    pub ca_pem: Vec<Vec<u8>>,
    /// The seal's CA (PEM): when given, every certificate PDF received is verified against it.
    pub seal_ca_pem: Option<Vec<u8>>,
    /// Per-request timeout (default 30 s).
    pub timeout: Option<Duration>,
}

impl LoginOptions {
    /// Allows one more Cohesion host to receive the certificate.
    pub fn cohesion_host(mut self, host: &str) -> Self {
        self.cohesion_hosts.push(host.to_owned());
        self
    }
    /// Trusts one more CA (PEM) for HTTPS.
    pub fn trust_ca_pem(mut self, pem: &[u8]) -> Self {
        self.ca_pem.push(pem.to_vec());
        self
    }
    /// Verifies every certificate PDF against this seal CA (PEM).
    pub fn seal_ca_pem(mut self, pem: &[u8]) -> Self {
        self.seal_ca_pem = Some(pem.to_vec());
        self
    }
}

/// An ANPR code with its description (`{code, description}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Code {
    /// The ANPR code.
    pub code: u16,
    /// Its Italian description.
    pub description: String,
}

/// A certificate kind (`{code, slug, description}`, ANPR Tabella 13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kind {
    /// The ANPR code.
    pub code: u16,
    /// The slug (`residenza`, `stato-di-famiglia`, ...).
    pub slug: String,
    /// Its Italian description.
    pub description: String,
}

/// A member of the citizen's famiglia anagrafica (`GET /api/v1/family`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyMember {
    /// Codice fiscale.
    pub codice_fiscale: String,
    /// Surname.
    pub surname: String,
    /// Given name.
    pub given_name: String,
    /// Relationship to the head of the family (Tabella 05).
    pub relationship: Option<Code>,
    /// Fields this client does not name.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// Whether one kind of certificate is available for a subject
/// (`GET /api/v1/certificates/options`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateOption {
    /// The kind.
    pub kind: Kind,
    /// Whether the portal would issue it.
    pub available: bool,
    /// Why not (Italian), when not available.
    pub reason: Option<String>,
    /// `required` or `exempt`.
    pub stamp: String,
    /// The stamp duty in cents, when required.
    pub stamp_amount_cents: u32,
    /// The fee in cents, if any.
    pub fee_cents: Option<u32>,
    /// Fields this client does not name.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// How a certificate's stamp duty is paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StampChoice {
    /// A marca da bollo, by its 14-digit identifier.
    Marca(String),
    /// An exemption (Tabella 39 code; a description for code 99).
    Exemption {
        /// The code.
        code: u16,
        /// Description (code 99 only).
        description: Option<String>,
    },
}

/// A request for a certificate (`POST /api/v1/certificates`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRequest {
    /// ANPR code (`8`) or slug (`residenza`).
    pub kind: String,
    /// Whom it is about (default: the card holder).
    pub subject: Option<String>,
    /// Destination (ANPR `paEstera`, 0-4; default 0).
    pub destination: Option<u16>,
    /// The stamp, for kinds that carry the duty.
    pub stamp: Option<StampChoice>,
}

impl CertificateRequest {
    /// A request for `kind` about the card holder, ordinary destination, no stamp.
    pub fn new(kind: &str) -> Self {
        CertificateRequest {
            kind: kind.to_owned(),
            subject: None,
            destination: None,
            stamp: None,
        }
    }
    /// About this subject.
    pub fn subject(mut self, cf: &str) -> Self {
        self.subject = Some(cf.to_owned());
        self
    }
    /// With this destination.
    pub fn destination(mut self, d: u16) -> Self {
        self.destination = Some(d);
        self
    }
    /// With this stamp.
    pub fn stamp(mut self, s: StampChoice) -> Self {
        self.stamp = Some(s);
        self
    }

    /// The JSON body of the API.
    pub fn body(&self) -> serde_json::Value {
        let mut b = serde_json::Map::new();
        let kind = match self.kind.trim().parse::<u16>() {
            Ok(n) => serde_json::Value::from(n),
            Err(_) => serde_json::Value::from(self.kind.trim()),
        };
        b.insert("kind".into(), kind);
        if let Some(s) = &self.subject {
            b.insert("subject".into(), s.as_str().into());
        }
        if let Some(d) = self.destination {
            b.insert("destination".into(), d.into());
        }
        match &self.stamp {
            None => {}
            Some(StampChoice::Marca(m)) => {
                b.insert("stamp".into(), serde_json::json!({ "marca": m }));
            }
            Some(StampChoice::Exemption { code, description }) => {
                b.insert(
                    "stamp".into(),
                    serde_json::json!({ "exemption": code, "description": description }),
                );
            }
        }
        serde_json::Value::Object(b)
    }
}

/// The 201 answer of `POST /api/v1/certificates`.
#[derive(Debug, Clone, Deserialize)]
struct IssuedAnswer {
    id: String,
    verification_code: String,
    verification_url: String,
    sha256: String,
    pdf_url: String,
}

/// A certificate the portal issued, with its PDF.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// Certificate id.
    pub id: String,
    /// Verification code (`codice`).
    pub code: String,
    /// The public verification URL (also in the QR code).
    pub url: String,
    /// SHA-256 of the PDF, hex (checked against the bytes received).
    pub sha256: String,
    /// The sealed PDF.
    pub pdf: Vec<u8>,
    /// Who sealed it, when the caller gave the seal CA.
    pub seal: Option<Sealed>,
}

/// One certificate of the citizen's (`GET /api/v1/certificates`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateSummary {
    /// Certificate id.
    pub id: String,
    /// The kind.
    pub kind: Kind,
    /// Whom it is about.
    pub subject: String,
    /// Who asked for it.
    pub requester: String,
    /// When it was issued (RFC 3339).
    pub issued_at: String,
    /// Fields this client does not name (verification code and URL, PDF URL, stamp...).
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// What the public verification page says about a certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// Whether the id and code name a certificate the portal issued.
    pub valid: bool,
    /// Its kind, when valid.
    pub kind: Option<Kind>,
    /// When it was issued (RFC 3339), when valid.
    pub issued_at: Option<String>,
    /// SHA-256 of the sealed original, hex, when valid.
    pub sha256: Option<String>,
}

/// A citizen logged in to a municipal portal.
pub struct CityPortal {
    base: Url,
    login: CitizenLogin,
    seal_anchors: Option<Vec<Vec<u8>>>,
    signatures: u64,
}

impl std::fmt::Debug for CityPortal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CityPortal")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// Reads the DER certificates of a PEM text.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, ClientError> {
    use base64::Engine as _;
    let text = std::str::from_utf8(pem)
        .map_err(|_| ClientError::Config("the seal CA is not a PEM text".into()))?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let body = &rest[start + 27..];
        let end = body.find("-----END CERTIFICATE-----").ok_or_else(|| {
            ClientError::Config("the seal CA has a certificate without its END line".into())
        })?;
        let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| ClientError::Config(format!("the seal CA's base64 is bad: {e}")))?;
        out.push(der);
        rest = &body[end..];
    }
    if out.is_empty() {
        return Err(ClientError::Config(
            "the seal CA file holds no PEM certificate".into(),
        ));
    }
    Ok(out)
}

fn network(e: impl std::fmt::Display) -> ClientError {
    ClientError::Network(e.to_string())
}

/// Turns a non-success answer into [`ClientError::Refused`] with the portal's reason.
async fn refusal(resp: reqwest::Response) -> ClientError {
    #[derive(Deserialize)]
    struct Body {
        error: String,
        message: String,
    }
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<Body>(&text) {
        Ok(b) => ClientError::Refused {
            status,
            error: b.error,
            message: b.message,
        },
        Err(_) => ClientError::Refused {
            status,
            error: format!("http_{status}"),
            message: text.chars().take(300).collect::<String>().trim().to_owned(),
        },
    }
}

async fn body_bytes(resp: reqwest::Response) -> Result<Vec<u8>, ClientError> {
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(ClientError::Protocol("the answer is too large".into()));
    }
    let bytes = resp.bytes().await.map_err(network)?;
    if bytes.len() > MAX_BODY {
        return Err(ClientError::Protocol("the answer is too large".into()));
    }
    Ok(bytes.to_vec())
}

async fn json_of<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
    what: &str,
) -> Result<T, ClientError> {
    let bytes = body_bytes(resp).await?;
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(format!("{what}: {e}")))
}

fn is_pdf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"%PDF-")
}

impl CityPortal {
    /// Logs in to the portal at `base_url` with the card's `key`: Cohesion's smart-card login
    /// from `/accedi` (one card signature; verify the PIN before).
    pub async fn login(
        base_url: &str,
        key: Arc<dyn SigningKey>,
        options: LoginOptions,
    ) -> Result<CityPortal, ClientError> {
        let base = Url::parse(base_url.trim_end_matches('/'))
            .map_err(|e| ClientError::Config(format!("{base_url:?} is not a URL: {e}")))?;
        check_portal_url(&base, base_url)?;
        let seal_anchors = options
            .seal_ca_pem
            .as_deref()
            .map(pem_certificates)
            .transpose()?;
        let mut b = CitizenLogin::builder(key);
        for h in &options.cohesion_hosts {
            b = b.cohesion_host(h);
        }
        for pem in &options.ca_pem {
            b = b.trust_ca_pem(pem);
        }
        if let Some(t) = options.timeout {
            b = b.timeout(t);
        }
        let login = b.build()?;
        // Back to the home page, which answers 200 to any citizen logged in (the record page
        // answers 403 to a holder who is not a resident: that is `record`'s refusal to report).
        let out = login
            .login(&format!("{}/accedi?ritorno=%2F", base_str(&base)))
            .await?;
        if !(200..300).contains(&out.status) {
            return Err(ClientError::Protocol(format!(
                "the login ended at {} with HTTP {}",
                out.url, out.status
            )));
        }
        Ok(CityPortal {
            base,
            login,
            seal_anchors,
            signatures: out.signatures,
        })
    }

    /// Card signatures the login made (1 for a fresh card session).
    pub fn login_signatures(&self) -> u64 {
        self.signatures
    }

    /// The portal's base URL (no trailing slash).
    pub fn base_url(&self) -> String {
        base_str(&self.base)
    }

    fn url(&self, path: &str) -> Result<Url, ClientError> {
        Url::parse(&format!("{}{path}", base_str(&self.base)))
            .map_err(|e| ClientError::Config(format!("{path}: {e}")))
    }

    fn http(&self, url: &Url) -> &reqwest::Client {
        self.login.client().client_for(url)
    }

    async fn get(&self, url: Url) -> Result<reqwest::Response, ClientError> {
        let r = self
            .http(&url)
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(network)?;
        if r.status().is_success() {
            Ok(r)
        } else {
            Err(refusal(r).await)
        }
    }

    async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, ClientError> {
        let url = self.url(path)?;
        let r = self
            .http(&url)
            .post(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body).map_err(|e| ClientError::Config(e.to_string()))?)
            .send()
            .await
            .map_err(network)?;
        if r.status().is_success() {
            Ok(r)
        } else {
            Err(refusal(r).await)
        }
    }

    /// The citizen's registry record (`GET /api/v1/me`), as the portal gives it.
    pub async fn record(&self) -> Result<serde_json::Value, ClientError> {
        json_of(self.get(self.url("/api/v1/me")?).await?, "the record").await
    }

    /// The citizen's famiglia anagrafica (`GET /api/v1/family`).
    pub async fn family(&self) -> Result<Vec<FamilyMember>, ClientError> {
        json_of(self.get(self.url("/api/v1/family")?).await?, "the family").await
    }

    /// Which certificates the citizen may get about `subject` (default: themselves).
    pub async fn certificate_options(
        &self,
        subject: Option<&str>,
    ) -> Result<Vec<CertificateOption>, ClientError> {
        let mut url = self.url("/api/v1/certificates/options")?;
        if let Some(s) = subject {
            url.query_pairs_mut().append_pair("subject", s);
        }
        json_of(self.get(url).await?, "the certificate options").await
    }

    /// Asks for a certificate; returns it with its sealed PDF (downloaded, its SHA-256 checked,
    /// and its seal verified when the seal CA was given).
    pub async fn request_certificate(
        &self,
        request: &CertificateRequest,
    ) -> Result<IssuedCertificate, ClientError> {
        let r = self.post("/api/v1/certificates", &request.body()).await?;
        let a: IssuedAnswer = json_of(r, "the issued certificate").await?;
        let pdf_url = self
            .base
            .join(&a.pdf_url)
            .map_err(|e| ClientError::Protocol(format!("pdf_url {:?}: {e}", a.pdf_url)))?;
        if pdf_url.origin() != self.base.origin() {
            return Err(ClientError::Protocol(format!(
                "the PDF is offered at another site ({pdf_url})"
            )));
        }
        let pdf = body_bytes(self.get(pdf_url).await?).await?;
        let sha256 = hex::encode(Sha256::digest(&pdf));
        if !sha256.eq_ignore_ascii_case(&a.sha256) {
            return Err(ClientError::Protocol(format!(
                "the PDF received has SHA-256 {sha256}, the portal announced {}",
                a.sha256
            )));
        }
        let seal = self.check_seal(&pdf, Some(&a.id))?;
        Ok(IssuedCertificate {
            id: a.id,
            code: a.verification_code,
            url: a.verification_url,
            sha256,
            pdf,
            seal,
        })
    }

    fn check_seal(&self, pdf: &[u8], id: Option<&str>) -> Result<Option<Sealed>, ClientError> {
        let Some(anchors) = &self.seal_anchors else {
            return Ok(None);
        };
        let sealed = documents::verify(pdf, anchors)?;
        if let Some(id) = id {
            if sealed.certificate_id != id {
                return Err(ClientError::Seal(DocumentError::Invalid(format!(
                    "the seal names certificate {}, not {id}",
                    sealed.certificate_id
                ))));
            }
        }
        Ok(Some(sealed))
    }

    /// The citizen's certificates, as requester or as subject (`GET /api/v1/certificates`).
    pub async fn certificates(&self) -> Result<Vec<CertificateSummary>, ClientError> {
        json_of(
            self.get(self.url("/api/v1/certificates")?).await?,
            "the certificates",
        )
        .await
    }

    /// Downloads a certificate's sealed PDF (verified when the seal CA was given).
    pub async fn download(&self, id: &str) -> Result<Vec<u8>, ClientError> {
        let mut url = self.url("/api/v1/certificates/")?;
        url.path_segments_mut()
            .map_err(|()| ClientError::Config("the portal URL cannot have a path".into()))?
            .pop_if_empty()
            .push(id)
            .push("pdf");
        let pdf = body_bytes(self.get(url).await?).await?;
        if !is_pdf(&pdf) {
            return Err(ClientError::Protocol("the download is not a PDF".into()));
        }
        self.check_seal(&pdf, Some(id))?;
        Ok(pdf)
    }

    /// A self-declaration (autocertificazione) of the chosen facts, as PDF (no seal).
    pub async fn declaration(&self, facts: &[&str]) -> Result<Vec<u8>, ClientError> {
        let r = self
            .post(
                "/api/v1/declarations",
                &serde_json::json!({ "facts": facts }),
            )
            .await?;
        let pdf = body_bytes(r).await?;
        if !is_pdf(&pdf) {
            return Err(ClientError::Protocol(
                "the self-declaration is not a PDF".into(),
            ));
        }
        Ok(pdf)
    }

    /// Asks the public verification page what it says about a certificate. When the login
    /// gave the seal CA ([`LoginOptions::seal_ca_pem`]), the sealed original is fetched and
    /// checked as [`verify_with_seal`] does; without it, see [`verify`].
    pub async fn verify(&self, verification_url: &str) -> Result<Verification, ClientError> {
        let url = Url::parse(verification_url)
            .map_err(|e| ClientError::Config(format!("{verification_url:?}: {e}")))?;
        verify_with(self.http(&url), url, self.seal_anchors.as_deref()).await
    }

    /// Signs out (`POST /api/v1/logout`: the portal ends the session and tells Cohesion). Later
    /// calls are refused by the portal (401).
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.post("/api/v1/logout", &serde_json::json!({})).await?;
        Ok(())
    }
}

/// A portal URL is `https://`, or `http://` to this machine only (`localhost`, 127.0.0.0/8,
/// `::1`: tests and demos).
fn check_portal_url(base: &Url, given: &str) -> Result<(), ClientError> {
    if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
        return Err(ClientError::Config(format!(
            "{given:?} is not an http(s) URL of a portal"
        )));
    }
    let host = base.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if base.scheme() == "http" && !loopback {
        return Err(ClientError::InsecureUrl(given.to_owned()));
    }
    Ok(())
}

fn base_str(u: &Url) -> String {
    u.as_str().trim_end_matches('/').to_owned()
}

/// Asks a portal's public verification page (`/verifica/{id}?codice=...`, JSON) what it says
/// about a certificate, without logging in. An unknown id or a wrong code is `valid: false`.
/// `ca_pem` are CAs for HTTPS (none: the system's).
///
/// The answer is only as trustworthy as the server at that URL: whoever controls it (or a QR
/// code pointing elsewhere) can answer `valid: true` for anything. To check the certificate
/// itself, use [`verify_with_seal`] with the seal's CA.
pub async fn verify(
    verification_url: &str,
    ca_pem: &[Vec<u8>],
) -> Result<Verification, ClientError> {
    let (client, url) = anonymous(verification_url, ca_pem)?;
    verify_with(client.client_for(&url), url, None).await
}

/// As [`verify`], and then checks the sealed original the page serves (`&pdf=1`) against the
/// seal's CA (`seal_ca_pem`, PEM): its SHA-256 must be the one the page answered, its seal must
/// verify with [`documents::verify`], and the certificate id it seals must be the URL's. Any
/// mismatch makes the answer `valid: false` (with no kind, date or hash), whatever the page said.
pub async fn verify_with_seal(
    verification_url: &str,
    ca_pem: &[Vec<u8>],
    seal_ca_pem: &[u8],
) -> Result<Verification, ClientError> {
    let anchors = pem_certificates(seal_ca_pem)?;
    let (client, url) = anonymous(verification_url, ca_pem)?;
    verify_with(client.client_for(&url), url, Some(&anchors)).await
}

fn anonymous(
    verification_url: &str,
    ca_pem: &[Vec<u8>],
) -> Result<(tscns_tls::AuthClient, Url), ClientError> {
    let url = Url::parse(verification_url)
        .map_err(|e| ClientError::Config(format!("{verification_url:?} is not a URL: {e}")))?;
    let mut b = tscns_tls::AuthClientBuilder::anonymous().timeout(Duration::from_secs(30));
    for (i, pem) in ca_pem.iter().enumerate() {
        b = b
            .add_ca_pem(pem, &format!("CA #{}", i + 1))
            .map_err(|e| ClientError::Config(e.to_string()))?;
    }
    let client = b.build().map_err(|e| ClientError::Config(e.to_string()))?;
    Ok((client, url))
}

fn not_valid() -> Verification {
    Verification {
        valid: false,
        kind: None,
        issued_at: None,
        sha256: None,
    }
}

/// Whether the sealed original the verification page serves is the certificate it vouched for.
async fn original_matches(
    client: &reqwest::Client,
    url: &Url,
    v: &Verification,
    anchors: &[Vec<u8>],
) -> Result<bool, ClientError> {
    let Some(id) = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|s| !s.is_empty())
    else {
        return Ok(false);
    };
    let Some(claimed) = v.sha256.as_deref() else {
        return Ok(false);
    };
    let mut pdf_url = url.clone();
    pdf_url.query_pairs_mut().append_pair("pdf", "1");
    let r = client
        .get(pdf_url)
        .header(reqwest::header::ACCEPT, "application/pdf")
        .send()
        .await
        .map_err(network)?;
    if !r.status().is_success() {
        return Ok(false);
    }
    let pdf = body_bytes(r).await?;
    if !is_pdf(&pdf) || !hex::encode(Sha256::digest(&pdf)).eq_ignore_ascii_case(claimed.trim()) {
        return Ok(false);
    }
    Ok(documents::verify(&pdf, anchors).is_ok_and(|s| s.certificate_id == id))
}

async fn verify_with(
    client: &reqwest::Client,
    url: Url,
    seal: Option<&[Vec<u8>]>,
) -> Result<Verification, ClientError> {
    let v = verify_json(client, &url).await?;
    match seal {
        Some(anchors) if v.valid => Ok(if original_matches(client, &url, &v, anchors).await? {
            v
        } else {
            not_valid()
        }),
        _ => Ok(v),
    }
}

async fn verify_json(client: &reqwest::Client, url: &Url) -> Result<Verification, ClientError> {
    let url = url.clone();
    if !url.path().contains("/verifica/") {
        return Err(ClientError::Config(format!(
            "{url} is not a verification URL (…/verifica/ID?codice=CODE)"
        )));
    }
    let r = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(network)?;
    let status = r.status();
    if status.is_success() {
        return json_of(r, "the verification").await;
    }
    if status == reqwest::StatusCode::NOT_FOUND {
        // Unknown id or wrong code: the page says "not valid", in JSON when it can.
        let bytes = body_bytes(r).await?;
        return Ok(serde_json::from_slice::<Verification>(&bytes).unwrap_or_else(|_| not_valid()));
    }
    Err(refusal(r).await)
}

/// Checks a sealed PDF offline against the seal's CA (PEM): who sealed it, when, which id.
pub fn verify_pdf(pdf: &[u8], seal_ca_pem: &[u8]) -> Result<Sealed, ClientError> {
    let anchors = pem_certificates(seal_ca_pem)?;
    Ok(documents::verify(pdf, &anchors)?)
}

/// The kind's description a sealed certificate names in its signed reason
/// (`Certificato n. ID (DESCRIPTION)`), if any.
pub fn sealed_kind_description(pdf: &[u8]) -> Option<String> {
    let needle = b"/Reason (Certificato n. ";
    let at = pdf.windows(needle.len()).rposition(|w| w == needle)? + needle.len();
    let rest = &pdf[at..pdf.len().min(at + 600)];
    // The reason is a PDF literal string: `(` `)` inside are escaped with `\`.
    let mut out = Vec::new();
    let mut escaped = false;
    for &c in rest {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == b'\\' {
            escaped = true;
        } else if c == b')' {
            break;
        } else {
            out.push(c);
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let (_id, described) = text.split_once(' ')?;
    described
        .strip_prefix('(')?
        .strip_suffix(')')
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn request_bodies_follow_the_api_contract() {
        let b = CertificateRequest::new("residenza")
            .stamp(StampChoice::Marca("01234567890123".into()))
            .body();
        assert_eq!(
            b,
            serde_json::json!({"kind": "residenza", "stamp": {"marca": "01234567890123"}})
        );
        let b = CertificateRequest::new("12")
            .subject("BNCLRA82B41H769J")
            .destination(2)
            .stamp(StampChoice::Exemption {
                code: 5,
                description: None,
            })
            .body();
        assert_eq!(
            b,
            serde_json::json!({"kind": 12, "subject": "BNCLRA82B41H769J", "destination": 2,
                "stamp": {"exemption": 5, "description": null}})
        );
    }

    #[test]
    fn plain_http_only_to_this_machine() {
        let check = |s: &str| check_portal_url(&Url::parse(s).unwrap(), s);
        for ok in [
            "https://portale.comune.example.it",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://localhost:9000/",
            "http://LOCALHOST",
            "http://[::1]:8080",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://portale.comune.example.it",
            "http://192.0.2.10:8080",
            "http://[2001:db8::1]",
            "http://localhost.example.com",
        ] {
            assert!(
                matches!(check(bad), Err(ClientError::InsecureUrl(_))),
                "{bad}"
            );
        }
        assert!(matches!(check("ftp://x"), Err(ClientError::Config(_))));
    }

    #[test]
    fn pem_files_without_certificates_are_refused() {
        assert!(matches!(
            pem_certificates(b"nothing here"),
            Err(ClientError::Config(_))
        ));
        assert!(matches!(
            pem_certificates(b"-----BEGIN CERTIFICATE-----\nAAAA"),
            Err(ClientError::Config(_))
        ));
        let ders = pem_certificates(
            b"-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n\
              -----BEGIN CERTIFICATE-----\nBAU=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert_eq!(ders, vec![vec![1, 2, 3], vec![4, 5]]);
    }

    #[test]
    fn the_kind_is_read_from_the_signed_reason() {
        let pdf = b"%PDF-1.7 ... /Reason (Certificato n. H769-ABC \\(Certificato di stato di famiglia \\(AIRE\\)\\)) /M";
        assert_eq!(
            sealed_kind_description(pdf).as_deref(),
            Some("Certificato di stato di famiglia (AIRE)")
        );
        assert_eq!(sealed_kind_description(b"%PDF- no reason"), None);
    }
}
