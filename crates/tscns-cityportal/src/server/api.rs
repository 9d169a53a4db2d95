//! The JSON API under `/api/v1` (same session cookie as the pages) and the public verification
//! endpoint. Paths and field names are a contract: fields are added, never renamed. Errors are
//! `{error: stable code, message: Italian sentence}`. The OpenAPI 3 document is generated from
//! these types ([`ApiDoc`]) and served at `/api/v1/openapi.json`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::auth::{cross_site, MaybeCitizen};
use super::service::{Failure, IssueRequest, KindOption, StampChoice};
use super::Portal;
use crate::domain::{CertificateKind, FamilyMember, Person, RegistryRecord, Stamp};
use crate::store::StoredCertificate;

pub(super) fn routes() -> Router<Portal> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/family", get(family))
        .route("/api/v1/certificates/options", get(options))
        .route("/api/v1/certificates", get(list).post(request))
        .route("/api/v1/certificates/{id}/pdf", get(pdf))
        .route("/api/v1/declarations", post(declaration))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/verifica/{id}", get(verify))
}

/// An error answer: `{error, message}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// Stable code, e.g. `not_in_family`, `marca_already_used`, `bad_body`, `rate_limited`.
    pub error: String,
    /// One Italian sentence the citizen can act on.
    pub message: String,
}

/// The JSON answer of a failure (429 carries `Retry-After`).
pub(crate) fn failure(f: &Failure) -> Response {
    if let Failure::Internal(e) = f {
        tracing::error!("cityportal API: {e}");
    }
    let mut r = (
        f.status(),
        Json(ApiError {
            error: f.code(),
            message: f.message(),
        }),
    )
        .into_response();
    if let Failure::RateLimited { retry_after } = f {
        if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

/// A JSON body that cannot be read: 422 with a fixed Italian sentence (the parser's English
/// text, which may quote the body, is logged at debug level only).
fn bad_body(e: &JsonRejection) -> Response {
    tracing::debug!("cityportal API: bad body: {}", e.body_text());
    failure(&Failure::Invalid {
        code: "bad_body",
        message: "Richiesta non valida: il corpo deve essere un oggetto JSON (Content-Type: application/json) con i campi e i tipi indicati nella documentazione dell'API (/api/v1/openapi.json).".into(),
    })
}

/// [`Query`] whose rejection is a 400 `{error: "bad_query", message}` in Italian.
pub(crate) struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(q)) => Ok(ApiQuery(q)),
            Err(_) => Err(failure(&super::service::BAD_QUERY)),
        }
    }
}

/// [`Path`] whose rejection is a 400 `{error: "bad_path", message}` in Italian.
pub(crate) struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(q)) => Ok(ApiPath(q)),
            Err(_) => Err(failure(&super::service::BAD_PATH)),
        }
    }
}

/// An ANPR code with its Italian description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CodeView {
    /// The code.
    pub code: u16,
    /// Its description.
    pub description: String,
}

/// A certificate kind (ANPR Tabella 13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KindView {
    /// ANPR code 1-20.
    pub code: u16,
    /// Slug, e.g. `residenza`.
    pub slug: String,
    /// Description.
    pub description: String,
}

impl From<CertificateKind> for KindView {
    fn from(k: CertificateKind) -> Self {
        KindView {
            code: k.code(),
            slug: k.slug().to_string(),
            description: k.description().to_string(),
        }
    }
}

/// A place of birth.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlaceView {
    /// Municipality.
    pub municipality: String,
    /// Cadastral code.
    pub cadastral_code: Option<String>,
    /// Province.
    pub province: Option<String>,
    /// Country.
    pub country: String,
}

/// A dated event (marriage, civil union, contract).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// Date, ISO 8601.
    pub date: String,
    /// Place.
    pub place: String,
}

/// The municipality.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MunicipalityView {
    /// Name.
    pub name: String,
    /// Cadastral code.
    pub cadastral_code: String,
    /// ISTAT code.
    pub istat_code: String,
    /// Province.
    pub province: String,
}

/// An address.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AddressView {
    /// Street.
    pub street: String,
    /// House number.
    pub number: String,
    /// Postal code.
    pub postal_code: String,
}

/// The famiglia anagrafica.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FamilyView {
    /// Family id.
    pub id: String,
    /// Address.
    pub address: AddressView,
    /// Resident there since (ISO 8601).
    pub since: String,
    /// A convivenza rather than a famiglia.
    pub convivenza: bool,
}

/// A member of the famiglia anagrafica.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    /// Codice fiscale.
    pub codice_fiscale: String,
    /// Surname.
    pub surname: String,
    /// Given name.
    pub given_name: String,
    /// Relationship to the head (Tabella 05).
    pub relationship: Option<CodeView>,
    /// Sex, `M` or `F`.
    pub sex: String,
    /// Birth date (ISO 8601).
    pub birth_date: String,
    /// Death date, if dead.
    pub death_date: Option<String>,
}

/// The citizen's record. Generalità fields are named as in the registry fixture.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordView {
    /// Codice fiscale.
    pub codice_fiscale: String,
    /// Surname.
    pub surname: String,
    /// Given name.
    pub given_name: String,
    /// Sex, `M` or `F`.
    pub sex: String,
    /// Birth date (ISO 8601).
    pub birth_date: String,
    /// Place of birth.
    pub birth_place: PlaceView,
    /// Citizenship (ISTAT country code).
    pub citizenship: CodeView,
    /// Civil status (Tabella 01).
    pub civil_status: CodeView,
    /// Relationship to the head of the family (Tabella 05).
    pub relationship: Option<CodeView>,
    /// Certifiability (Tabella 42).
    pub certifiability: CodeView,
    /// Father.
    pub father: Option<String>,
    /// Mother.
    pub mother: Option<String>,
    /// Spouse's codice fiscale.
    pub spouse: Option<String>,
    /// Marriage.
    pub marriage: Option<EventView>,
    /// Civil partner's codice fiscale.
    pub partner: Option<String>,
    /// Civil union.
    pub civil_union: Option<EventView>,
    /// Cohabitation contract.
    pub cohabitation_contract: Option<EventView>,
    /// Identity card number.
    pub identity_card: Option<String>,
    /// Identity card expiry (ISO 8601).
    pub identity_card_expiry: Option<String>,
    /// Electoral section.
    pub electoral_section: Option<u32>,
    /// Digital domicile.
    pub digital_domicile: Option<String>,
    /// Registration date (ISO 8601).
    pub registered: Option<String>,
    /// Registered from.
    pub registered_from: Option<String>,
    /// Death date.
    pub death_date: Option<String>,
    /// Registered in AIRE.
    pub aire: bool,
    /// Municipality.
    pub municipality: MunicipalityView,
    /// The family, if any.
    pub family: Option<FamilyView>,
    /// Its members.
    pub members: Vec<MemberView>,
}

fn iso(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn citizenship(code: u16) -> CodeView {
    CodeView {
        code,
        description: if code == 100 {
            "ITALIA".to_string()
        } else {
            format!("Stato estero (codice ISTAT {code})")
        },
    }
}

fn event(e: &Option<crate::domain::Event>) -> Option<EventView> {
    e.as_ref().map(|e| EventView {
        date: iso(e.date),
        place: e.place.clone(),
    })
}

fn sex(s: crate::domain::Sex) -> String {
    match s {
        crate::domain::Sex::M => "M".into(),
        crate::domain::Sex::F => "F".into(),
    }
}

pub(crate) fn member_view(m: &FamilyMember) -> MemberView {
    MemberView {
        codice_fiscale: m.codice_fiscale.as_str().to_string(),
        surname: m.surname.clone(),
        given_name: m.given_name.clone(),
        relationship: m.relationship.map(|r| CodeView {
            code: r.code(),
            description: r.description().to_string(),
        }),
        sex: sex(m.sex),
        birth_date: iso(m.birth_date),
        death_date: m.death_date.map(iso),
    }
}

impl From<&RegistryRecord> for RecordView {
    fn from(r: &RegistryRecord) -> Self {
        let p: &Person = &r.person;
        RecordView {
            codice_fiscale: p.codice_fiscale.as_str().to_string(),
            surname: p.surname.clone(),
            given_name: p.given_name.clone(),
            sex: sex(p.sex),
            birth_date: iso(p.birth_date),
            birth_place: PlaceView {
                municipality: p.birth_place.municipality.clone(),
                cadastral_code: p.birth_place.cadastral_code.clone(),
                province: p.birth_place.province.clone(),
                country: p.birth_place.country.clone(),
            },
            citizenship: citizenship(p.citizenship),
            civil_status: CodeView {
                code: p.civil_status.code(),
                description: p.civil_status.description().to_string(),
            },
            relationship: p.relationship.map(|x| CodeView {
                code: x.code(),
                description: x.description().to_string(),
            }),
            certifiability: CodeView {
                code: p.certifiability.code(),
                description: p.certifiability.description().to_string(),
            },
            father: p.father.clone(),
            mother: p.mother.clone(),
            spouse: p.spouse.as_ref().map(|c| c.as_str().to_string()),
            marriage: event(&p.marriage),
            partner: p.partner.as_ref().map(|c| c.as_str().to_string()),
            civil_union: event(&p.civil_union),
            cohabitation_contract: event(&p.cohabitation_contract),
            identity_card: p.identity_card.as_ref().map(|c| c.number.clone()),
            identity_card_expiry: p.identity_card.as_ref().map(|c| iso(c.expiry)),
            electoral_section: p.electoral_section,
            digital_domicile: p.digital_domicile.clone(),
            registered: p.registered.as_ref().map(|x| iso(x.date)),
            registered_from: p.registered.as_ref().and_then(|x| x.from.clone()),
            death_date: p.death_date.map(iso),
            aire: p.aire,
            municipality: MunicipalityView {
                name: r.municipality.name.clone(),
                cadastral_code: r.municipality.cadastral_code.clone(),
                istat_code: r.municipality.istat_code.clone(),
                province: r.municipality.province.clone(),
            },
            family: r.family.as_ref().map(|f| FamilyView {
                id: f.id.clone(),
                address: AddressView {
                    street: f.address.street.clone(),
                    number: f.address.number.clone(),
                    postal_code: f.address.postal_code.clone(),
                },
                since: iso(f.since),
                convivenza: f.convivenza,
            }),
            members: r.members.iter().map(member_view).collect(),
        }
    }
}

/// One kind for one subject.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OptionView {
    /// The kind.
    pub kind: KindView,
    /// Whether it can be issued online now.
    pub available: bool,
    /// Why not (an Italian sentence), when not available.
    pub reason: Option<String>,
    /// The stable code of the refusal, when not available.
    pub reason_code: Option<String>,
    /// `required` (EUR 16.00 marca da bollo) or `exempt` (by law).
    pub stamp: String,
    /// The stamp duty in cents (1600 or 0).
    pub stamp_amount_cents: u32,
    /// Diritti di segreteria in cents; null when waived.
    pub fee_cents: Option<u32>,
}

impl From<&KindOption> for OptionView {
    fn from(o: &KindOption) -> Self {
        OptionView {
            kind: o.kind.into(),
            available: o.refusal.is_none(),
            reason: o.refusal.as_ref().map(ToString::to_string),
            reason_code: o.refusal.as_ref().map(super::service::refusal_code),
            stamp: if o.stamp_required {
                "required"
            } else {
                "exempt"
            }
            .to_string(),
            stamp_amount_cents: if o.stamp_required {
                crate::domain::STAMP_DUTY_CENTS
            } else {
                0
            },
            fee_cents: o.fee_cents,
        }
    }
}

/// A kind given as ANPR code (number or digits) or slug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum KindParam {
    /// ANPR code, e.g. 8.
    Code(u16),
    /// Slug or code as text, e.g. `residenza`.
    Slug(String),
}

/// The stamp of a request: a marca da bollo, or an exemption (Tabella 39).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StampParam {
    /// `{marca}`: the 14-digit identifier.
    Marca {
        /// The identifier.
        marca: String,
    },
    /// `{exemption, description}`: the Tabella 39 code; description for code 99.
    Exemption {
        /// The code.
        exemption: u16,
        /// Description (code 99 only).
        #[serde(default)]
        description: Option<String>,
    },
}

/// `POST /api/v1/certificates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateRequest {
    /// ANPR code or slug.
    pub kind: KindParam,
    /// The subject's codice fiscale (default: the citizen).
    #[serde(default)]
    pub subject: Option<String>,
    /// Destination (ANPR `paEstera`, 0-4; default 0).
    #[serde(default)]
    pub destination: Option<u16>,
    /// Marca or exemption; none for kinds exempt by law.
    #[serde(default)]
    pub stamp: Option<StampParam>,
}

/// `POST /api/v1/declarations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclarationRequest {
    /// Slugs of the facts: nascita, residenza, cittadinanza, stato-civile, stato-di-famiglia,
    /// esistenza-in-vita, codice-fiscale.
    pub facts: Vec<String>,
}

/// Parses a JSON body of the API (what the fuzz target `cityportal_api` drives).
pub fn parse_certificate_request(body: &[u8]) -> Result<CertificateRequest, serde_json::Error> {
    serde_json::from_slice(body)
}

/// Parses a `POST /api/v1/declarations` body.
pub fn parse_declaration_request(body: &[u8]) -> Result<DeclarationRequest, serde_json::Error> {
    serde_json::from_slice(body)
}

impl From<CertificateRequest> for IssueRequest {
    fn from(r: CertificateRequest) -> Self {
        IssueRequest {
            kind: match r.kind {
                KindParam::Code(c) => c.to_string(),
                KindParam::Slug(s) => s,
            },
            subject: r.subject,
            destination: r.destination.unwrap_or(0),
            stamp: match r.stamp {
                None => StampChoice::None,
                Some(StampParam::Marca { marca }) => StampChoice::Marca(marca),
                Some(StampParam::Exemption {
                    exemption,
                    description,
                }) => StampChoice::Exemption {
                    code: exemption,
                    description,
                },
            },
        }
    }
}

/// An issued certificate (201 answer).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuedView {
    /// Certificate id.
    pub id: String,
    /// Verification code.
    pub verification_code: String,
    /// The public verification URL (also in the QR code).
    pub verification_url: String,
    /// SHA-256 of the sealed PDF, hex.
    pub sha256: String,
    /// Where to download the PDF (same session).
    pub pdf_url: String,
    /// The kind.
    pub kind: KindView,
    /// The subject's codice fiscale.
    pub subject: String,
    /// Issue time, RFC 3339.
    pub issued_at: String,
}

/// A certificate of the citizen's list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CertificateView {
    /// Certificate id.
    pub id: String,
    /// The kind.
    pub kind: KindView,
    /// The subject's codice fiscale.
    pub subject: String,
    /// The requester's codice fiscale.
    pub requester: String,
    /// Destination (paEstera).
    pub destination: CodeView,
    /// Issue time, RFC 3339.
    pub issued_at: String,
    /// SHA-256 of the sealed PDF, hex.
    pub sha256: String,
    /// Verification code.
    pub verification_code: String,
    /// Public verification URL.
    pub verification_url: String,
    /// Download URL.
    pub pdf_url: String,
    /// `marca`, `exempt` or `exempt_by_law`.
    pub stamp: String,
}

pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub(crate) fn verification_url(p: &Portal, c: &StoredCertificate) -> String {
    format!(
        "{}/verifica/{}?codice={}",
        p.config().base(),
        c.id,
        c.verification_code
    )
}

pub(crate) fn pdf_path(c: &StoredCertificate) -> String {
    format!("/api/v1/certificates/{}/pdf", c.id)
}

fn certificate_view(p: &Portal, c: &StoredCertificate) -> CertificateView {
    CertificateView {
        id: c.id.clone(),
        kind: c.kind.into(),
        subject: c.subject.clone(),
        requester: c.requester.clone(),
        destination: CodeView {
            code: c.destination.code(),
            description: c.destination.description().to_string(),
        },
        issued_at: rfc3339(c.issued_at),
        sha256: c.sha256.clone(),
        verification_code: c.verification_code.clone(),
        verification_url: verification_url(p, c),
        pdf_url: format!("{}{}", p.config().base(), pdf_path(c)),
        stamp: match &c.stamp {
            Some(Stamp::Marca(_)) => "marca",
            Some(Stamp::Exempt(_)) => "exempt",
            None => "exempt_by_law",
        }
        .to_string(),
    }
}

/// The public answer of the verification.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerificationView {
    /// Whether the id exists and the code is its verification code.
    pub valid: bool,
    /// The kind, when valid.
    pub kind: Option<KindView>,
    /// Issue time (RFC 3339), when valid.
    pub issued_at: Option<String>,
    /// SHA-256 of the sealed original, when valid.
    pub sha256: Option<String>,
}

/// `GET /verifica/{id}` parameters.
#[derive(Debug, Deserialize)]
pub(crate) struct VerifyQuery {
    pub codice: Option<String>,
    pub pdf: Option<String>,
}

macro_rules! citizen {
    ($c:expr) => {
        match $c {
            Some(c) => c,
            None => return failure(&Failure::NotLoggedIn),
        }
    };
}

fn pdf_response(bytes: Vec<u8>, filename: &str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// The citizen's record.
#[utoipa::path(get, path = "/api/v1/me", responses(
    (status = 200, body = RecordView), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn me(State(p): State<Portal>, MaybeCitizen(c): MaybeCitizen) -> Response {
    let c = citizen!(c);
    match p.my_record(&c).await {
        Ok(r) => Json(RecordView::from(&r)).into_response(),
        Err(f) => failure(&f),
    }
}

/// The citizen's famiglia anagrafica (the citizen included).
#[utoipa::path(get, path = "/api/v1/family", responses(
    (status = 200, body = Vec<MemberView>), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn family(State(p): State<Portal>, MaybeCitizen(c): MaybeCitizen) -> Response {
    let c = citizen!(c);
    match p.my_record(&c).await {
        Ok(r) => Json(r.members.iter().map(member_view).collect::<Vec<_>>()).into_response(),
        Err(f) => failure(&f),
    }
}

/// `GET /api/v1/certificates/options` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct OptionsQuery {
    /// The subject's codice fiscale (default: the citizen).
    subject: Option<String>,
}

/// The 15 online kinds for a subject: available, or why not.
#[utoipa::path(get, path = "/api/v1/certificates/options", params(OptionsQuery), responses(
    (status = 200, body = Vec<OptionView>), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn options(
    State(p): State<Portal>,
    MaybeCitizen(c): MaybeCitizen,
    ApiQuery(q): ApiQuery<OptionsQuery>,
) -> Response {
    let c = citizen!(c);
    match p.options(&c, q.subject.as_deref()).await {
        Ok((_, list)) => {
            Json(list.iter().map(OptionView::from).collect::<Vec<_>>()).into_response()
        }
        Err(f) => failure(&f),
    }
}

/// Issues a certificate.
#[utoipa::path(post, path = "/api/v1/certificates", request_body = CertificateRequest, responses(
    (status = 201, body = IssuedView), (status = 401, body = ApiError), (status = 403, body = ApiError),
    (status = 409, body = ApiError), (status = 422, body = ApiError), (status = 429, body = ApiError)))]
async fn request(
    State(p): State<Portal>,
    MaybeCitizen(c): MaybeCitizen,
    headers: HeaderMap,
    body: Result<Json<CertificateRequest>, JsonRejection>,
) -> Response {
    let c = citizen!(c);
    if cross_site(&p, &headers) {
        return failure(&Failure::Csrf);
    }
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => return bad_body(&e),
    };
    match p.issue(&c, body.into()).await {
        Ok(k) => (
            StatusCode::CREATED,
            Json(IssuedView {
                id: k.id.clone(),
                verification_code: k.verification_code.clone(),
                verification_url: verification_url(&p, &k),
                sha256: k.sha256.clone(),
                pdf_url: format!("{}{}", p.config().base(), pdf_path(&k)),
                kind: k.kind.into(),
                subject: k.subject.clone(),
                issued_at: rfc3339(k.issued_at),
            }),
        )
            .into_response(),
        Err(f) => failure(&f),
    }
}

/// The citizen's certificates, as requester or as subject.
#[utoipa::path(get, path = "/api/v1/certificates", responses(
    (status = 200, body = Vec<CertificateView>), (status = 401, body = ApiError)))]
async fn list(State(p): State<Portal>, MaybeCitizen(c): MaybeCitizen) -> Response {
    let c = citizen!(c);
    match p.my_certificates(&c).await {
        Ok(l) => Json(
            l.iter()
                .map(|k| certificate_view(&p, k))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(f) => failure(&f),
    }
}

/// The sealed PDF, for its requester or its subject only.
#[utoipa::path(get, path = "/api/v1/certificates/{id}/pdf", params(("id" = String, Path, description = "certificate id")), responses(
    (status = 200, content_type = "application/pdf", body = Vec<u8>), (status = 401, body = ApiError),
    (status = 404, body = ApiError), (status = 429, body = ApiError)))]
async fn pdf(
    State(p): State<Portal>,
    MaybeCitizen(c): MaybeCitizen,
    ApiPath(id): ApiPath<String>,
) -> Response {
    let c = citizen!(c);
    match p.download(&c, &id).await {
        Ok(k) => pdf_response(k.pdf, &format!("certificato-{}.pdf", k.id)),
        Err(f) => failure(&f),
    }
}

/// A self-declaration (DPR 445/2000 art. 46) of the chosen facts, as PDF.
#[utoipa::path(post, path = "/api/v1/declarations", request_body = DeclarationRequest, responses(
    (status = 200, content_type = "application/pdf", body = Vec<u8>), (status = 401, body = ApiError),
    (status = 422, body = ApiError), (status = 429, body = ApiError)))]
async fn declaration(
    State(p): State<Portal>,
    MaybeCitizen(c): MaybeCitizen,
    headers: HeaderMap,
    body: Result<Json<DeclarationRequest>, JsonRejection>,
) -> Response {
    let c = citizen!(c);
    if cross_site(&p, &headers) {
        return failure(&Failure::Csrf);
    }
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => return bad_body(&e),
    };
    match p.declaration(&c, &body.facts).await {
        Ok(pdf) => pdf_response(pdf, "autocertificazione.pdf"),
        Err(f) => failure(&f),
    }
}

/// Public verification of a certificate: JSON with `Accept: application/json`, the sealed
/// original with `pdf=1`, else the HTML page.
#[utoipa::path(get, path = "/verifica/{id}", params(("id" = String, Path, description = "certificate id"),
    ("codice" = String, Query, description = "verification code"), ("pdf" = Option<String>, Query, description = "1: the sealed PDF")),
    responses((status = 200, body = VerificationView), (status = 429, body = ApiError)))]
async fn verify(
    State(p): State<Portal>,
    super::ClientAddr(addr): super::ClientAddr,
    MaybeCitizen(c): MaybeCitizen,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<VerifyQuery>,
) -> Response {
    let json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    let want_pdf = q.pdf.as_deref() == Some("1");
    let found = match p
        .verify(&addr, &id, q.codice.as_deref().unwrap_or(""), want_pdf)
        .await
    {
        Ok(f) => f,
        Err(f) if json || q.pdf.is_some() => return failure(&f),
        Err(f) => return super::pages::failure_page(&p, c.as_ref(), &f),
    };
    if want_pdf {
        return match found {
            Some(k) => pdf_response(k.pdf, &format!("certificato-{}.pdf", k.id)),
            None => failure(&Failure::NotFound),
        };
    }
    if json {
        return Json(VerificationView {
            valid: found.is_some(),
            kind: found.as_ref().map(|k| k.kind.into()),
            issued_at: found.as_ref().map(|k| rfc3339(k.issued_at)),
            sha256: found.as_ref().map(|k| k.sha256.clone()),
        })
        .into_response();
    }
    super::pages::verification_page(
        &p,
        c.as_ref(),
        &id,
        q.codice.as_deref().unwrap_or(""),
        found.as_ref(),
    )
}

/// The OpenAPI 3 document of this API, generated from the handlers' types.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "CityPortal API",
        description = "Registry services of the municipality: record, family, certificates, self-declarations, verification."
    ),
    paths(me, family, options, request, list, pdf, declaration, verify),
    components(schemas(
        ApiError,
        CodeView,
        KindView,
        RecordView,
        MemberView,
        OptionView,
        CertificateRequest,
        KindParam,
        StampParam,
        IssuedView,
        CertificateView,
        DeclarationRequest,
        VerificationView
    ))
)]
pub struct ApiDoc;

async fn openapi() -> Response {
    Json(ApiDoc::openapi()).into_response()
}
