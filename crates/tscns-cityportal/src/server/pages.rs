//! The pages citizens see: Italian, server-rendered with maud (escaped by construction), no
//! JavaScript, one stylesheet, landmarks and labels for WCAG 2.1 AA.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;

use super::api::{pdf_path, rfc3339, verification_url};
use super::auth::{check_form, login_redirect, MaybeCitizen};
use super::service::{Citizen, Failure, IssueRequest, StampChoice};
use super::Portal;
use crate::documents::DeclaredFact;
use crate::domain::{Destination, Exemption, RegistryRecord};
use crate::store::StoredCertificate;

const CSS: &str = include_str!("portale.css");

pub(super) fn routes() -> Router<Portal> {
    Router::new()
        .route("/", get(home))
        .route("/anagrafe", get(anagrafe))
        .route("/certificati", get(certificati).post(certificati_post))
        .route(
            "/autocertificazione",
            get(autocertificazione).post(autocertificazione_post),
        )
        .route("/static/portale.css", get(css))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/certificati/{id}/pdf", get(download))
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

fn layout(p: &Portal, c: Option<&Citizen>, title: &str, current: &str, body: Markup) -> Markup {
    let m = p.municipality();
    let nav = [
        ("/anagrafe", "Interrogazione Anagrafe"),
        ("/certificati", "Certificazione"),
        ("/autocertificazione", "Autocertificazione"),
    ];
    html! {
        (DOCTYPE)
        html lang="it" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — Comune di " (m.name) }
                link rel="stylesheet" href="/static/portale.css";
            }
            body {
                a class="salta" href="#contenuto" { "Vai al contenuto" }
                header class="testata" {
                    p class="ente" { "Comune di " (m.name) " (" (m.province) ")" }
                    p class="servizio" { "Servizi demografici online" }
                }
                @if let Some(c) = c {
                    nav aria-label="Servizi" {
                        ul {
                            @for (href, label) in nav {
                                li {
                                    @if href == current {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                            li {
                                form method="post" action="/esci" class="esci" {
                                    input type="hidden" name="csrf" value=(c.csrf);
                                    button type="submit" { "Esci" }
                                }
                            }
                        }
                    }
                }
                main id="contenuto" {
                    (body)
                }
                footer {
                    p { "Portale di riferimento tscns. I certificati rilasciati recano il sigillo elettronico del Comune e si verificano alla pagina indicata dal codice QR." }
                }
            }
        }
    }
}

fn page(status: StatusCode, m: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

/// A page with one message (errors, refusals, confirmations).
pub(crate) fn message_page(
    p: &Portal,
    c: Option<&Citizen>,
    status: StatusCode,
    title: &str,
    message: &str,
    offer_login: bool,
) -> Response {
    let body = html! {
        h1 { (title) }
        p class="avviso" role="alert" { (message) }
        @if offer_login {
            p { a href="/accedi" { "Accedi di nuovo" } " oppure " a href="/" { "torna alla pagina iniziale" } "." }
        } @else {
            p { a href="/" { "Torna alla pagina iniziale" } }
        }
    };
    page(status, layout(p, c, title, "", body))
}

/// [`Query`] whose rejection is the Italian error page (400), never the parser's English text.
pub(crate) struct PageQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned> FromRequestParts<Portal> for PageQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        p: &Portal,
    ) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, p).await {
            Ok(Query(q)) => Ok(PageQuery(q)),
            Err(_) => Err(failure_page(p, None, &super::service::BAD_QUERY)),
        }
    }
}

/// [`Path`] whose rejection is the Italian error page (400), never the parser's English text.
pub(crate) struct PagePath<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send> FromRequestParts<Portal> for PagePath<T> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        p: &Portal,
    ) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, p).await {
            Ok(Path(q)) => Ok(PagePath(q)),
            Err(_) => Err(failure_page(p, None, &super::service::BAD_PATH)),
        }
    }
}

/// The page of a failure: a missing session redirects to the login.
pub(crate) fn failure_page(p: &Portal, c: Option<&Citizen>, f: &Failure) -> Response {
    if let Failure::Internal(e) = f {
        tracing::error!("cityportal page: {e}");
    }
    if let Failure::NotLoggedIn = f {
        return login_redirect(super::auth::DEFAULT_RETURN);
    }
    let mut r = message_page(
        p,
        c,
        f.status(),
        "Richiesta non accolta",
        &f.message(),
        false,
    );
    if let Failure::RateLimited { retry_after } = f {
        if let Ok(v) = retry_after.to_string().parse() {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

async fn home(State(p): State<Portal>, MaybeCitizen(c): MaybeCitizen) -> Response {
    let m = p.municipality();
    let body = html! {
        h1 { "Servizi demografici del Comune di " (m.name) }
        p { "Con la Carta Nazionale dei Servizi (la Tessera Sanitaria TS-CNS) o con le credenziali Cohesion può:" }
        ul {
            li { strong { "Interrogazione Anagrafe" } ": consultare i Suoi dati anagrafici e quelli della Sua famiglia;" }
            li { strong { "Certificazione" } ": ottenere certificati anagrafici con il sigillo elettronico del Comune;" }
            li { strong { "Autocertificazione" } ": preparare una dichiarazione sostitutiva di certificazione." }
        }
        @if c.is_some() {
            p { a class="pulsante" href="/anagrafe" { "Vai ai Suoi dati" } }
        } @else {
            p { a class="pulsante" href="/accedi" { "Accedi" } }
        }
    };
    page(
        StatusCode::OK,
        layout(&p, c.as_ref(), "Pagina iniziale", "/", body),
    )
}

fn it_date(d: time::Date) -> String {
    format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year())
}

fn record_markup(r: &RegistryRecord) -> Markup {
    let today = time::OffsetDateTime::now_utc().date();
    let p = &r.person;
    let rows: Vec<(&str, String)> = vec![
        ("Cognome", p.surname.clone()),
        ("Nome", p.given_name.clone()),
        ("Codice fiscale", p.codice_fiscale.as_str().to_string()),
        (
            "Sesso",
            match p.sex {
                crate::domain::Sex::M => "maschile".into(),
                crate::domain::Sex::F => "femminile".into(),
            },
        ),
        ("Data di nascita", it_date(p.birth_date)),
        (
            "Luogo di nascita",
            format!(
                "{}{}",
                p.birth_place.municipality,
                p.birth_place
                    .province
                    .as_ref()
                    .map(|x| format!(" ({x})"))
                    .unwrap_or_default()
            ),
        ),
        (
            "Cittadinanza",
            if p.citizenship == 100 {
                "italiana".into()
            } else {
                format!("Stato estero (codice ISTAT {})", p.citizenship)
            },
        ),
        ("Stato civile", p.civil_status.description().to_string()),
        ("Padre", p.father.clone().unwrap_or_else(|| "—".into())),
        ("Madre", p.mother.clone().unwrap_or_else(|| "—".into())),
        (
            "Certificabilità",
            p.certifiability.description().to_string(),
        ),
        (
            "Carta d'identità",
            p.identity_card
                .as_ref()
                .map(|c| format!("{} (scade il {})", c.number, it_date(c.expiry)))
                .unwrap_or_else(|| "—".into()),
        ),
        (
            "Sezione elettorale",
            p.electoral_section
                .map(|s| s.to_string())
                .unwrap_or_else(|| "—".into()),
        ),
        (
            "Domicilio digitale",
            p.digital_domicile.clone().unwrap_or_else(|| "—".into()),
        ),
        (
            "Iscrizione anagrafica",
            p.registered
                .as_ref()
                .map(|x| {
                    format!(
                        "dal {}{}",
                        it_date(x.date),
                        x.from
                            .as_ref()
                            .map(|f| format!(", proveniente da {f}"))
                            .unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "—".into()),
        ),
        (
            "Iscrizione AIRE",
            if p.aire { "sì".into() } else { "no".into() },
        ),
    ];
    html! {
        h2 { "Generalità" }
        dl class="dati" {
            @for (k, v) in &rows {
                dt { (k) }
                dd { (v) }
            }
        }
        h2 { "Residenza e famiglia" }
        @if let Some(f) = &r.family {
            p { "Indirizzo: " (f.address.street) " " (f.address.number) ", " (f.address.postal_code) " " (r.municipality.name) " (" (r.municipality.province) "), dal " (it_date(f.since)) "." }
            table {
                caption { "Componenti della famiglia anagrafica" }
                thead { tr { th scope="col" { "Cognome e nome" } th scope="col" { "Codice fiscale" } th scope="col" { "Relazione di parentela" } th scope="col" { "Data di nascita" } } }
                tbody {
                    @for m in r.members.iter().filter(|m| !m.is_dead_on(today)) {
                        tr {
                            th scope="row" { (m.surname) " " (m.given_name) }
                            td { (m.codice_fiscale.as_str()) }
                            td { (m.relationship.map(|x| x.description()).unwrap_or("—")) }
                            td { (it_date(m.birth_date)) }
                        }
                    }
                }
            }
            @for m in r.members.iter().filter(|m| m.is_dead_on(today)) {
                @if let Some(d) = m.death_date {
                    p { (m.surname) " " (m.given_name) " (" (m.codice_fiscale.as_str()) "), deceduto/a il " (it_date(d)) ", non fa più parte della famiglia anagrafica." }
                }
            }
        } @else {
            p { "Nel registro non risulta una famiglia anagrafica." }
        }
    }
}

async fn anagrafe(State(p): State<Portal>, MaybeCitizen(c): MaybeCitizen) -> Response {
    let Some(c) = c else {
        return login_redirect("/anagrafe");
    };
    match p.my_record(&c).await {
        Ok(r) => {
            let body = html! {
                h1 { "Interrogazione Anagrafe" }
                p { "Questi sono i dati che l'anagrafe del Comune conserva su di Lei, aggiornati a oggi." }
                (record_markup(&r))
            };
            page(
                StatusCode::OK,
                layout(&p, Some(&c), "Interrogazione Anagrafe", "/anagrafe", body),
            )
        }
        Err(f) => failure_page(&p, Some(&c), &f),
    }
}

fn euro(cents: u32) -> String {
    format!("EUR {},{:02}", cents / 100, cents % 100)
}

async fn certificati_page(
    p: &Portal,
    c: &Citizen,
    status: StatusCode,
    notice: Option<Markup>,
) -> Response {
    let me = match p.my_record(c).await {
        Ok(r) => r,
        Err(f) => return failure_page(p, Some(c), &f),
    };
    let mut per_member = Vec::new();
    for m in &me.members {
        match p.options(c, Some(m.codice_fiscale.as_str())).await {
            Ok((_, o)) => per_member.push((m.clone(), o)),
            Err(f) => return failure_page(p, Some(c), &f),
        }
    }
    if me.members.is_empty() {
        match p.options(c, None).await {
            Ok((_, o)) => per_member.push((crate::domain::FamilyMember::from(&me.person), o)),
            Err(f) => return failure_page(p, Some(c), &f),
        }
    }
    let mine = match p.my_certificates(c).await {
        Ok(l) => l,
        Err(f) => return failure_page(p, Some(c), &f),
    };
    let kinds: Vec<_> = crate::domain::CertificateKind::ALL
        .iter()
        .copied()
        .filter(|k| k.online())
        .collect();
    let body = html! {
        h1 { "Certificazione" }
        @if let Some(n) = notice { (n) }
        h2 { "Certificati disponibili" }
        p { "Per ogni componente della Sua famiglia anagrafica, i certificati che può ottenere online e, se non è possibile, il motivo." }
        @for (i, (m, options)) in per_member.iter().enumerate() {
            table id=(format!("disponibili-{i}")) {
                caption { (m.given_name) " " (m.surname) " (" (m.codice_fiscale.as_str()) ")" }
                thead { tr { th scope="col" { "Certificato" } th scope="col" { "Disponibile" } th scope="col" { "Bollo e diritti" } } }
                tbody {
                    @for o in options {
                        tr {
                            th scope="row" { (o.kind.description()) }
                            td {
                                @match &o.refusal {
                                    None => { "Sì" }
                                    Some(r) => { "No: " (r.to_string()) }
                                }
                            }
                            td {
                                @if o.stamp_required { "Marca da bollo " (euro(crate::domain::STAMP_DUTY_CENTS)) } @else { "Esente da bollo per legge" }
                                @if let Some(f) = o.fee_cents { "; diritti " (euro(f)) }
                            }
                        }
                    }
                }
            }
        }
        h2 id="richiesta" { "Richiedi un certificato" }
        form method="post" action="/certificati" class="modulo" {
            input type="hidden" name="csrf" value=(c.csrf);
            p {
                label for="tipo" { "Certificato" }
                select id="tipo" name="tipo" {
                    @for k in &kinds { option value=(k.slug()) { (k.description()) } }
                }
            }
            p {
                label for="soggetto" { "Intestatario" }
                select id="soggetto" name="soggetto" {
                    @for m in &me.members { option value=(m.codice_fiscale.as_str()) { (m.given_name) " " (m.surname) } }
                    @if me.members.is_empty() { option value=(me.person.codice_fiscale.as_str()) { (me.person.given_name) " " (me.person.surname) } }
                    option value="altro" { "Un'altra persona (indichi il codice fiscale)" }
                }
            }
            p {
                label for="altro" { "Codice fiscale di un'altra persona (solo se ha scelto «Un'altra persona»)" }
                input id="altro" name="altro" type="text" maxlength="16" autocomplete="off";
            }
            p {
                label for="destinazione" { "Uso del certificato" }
                select id="destinazione" name="destinazione" {
                    @for d in Destination::ALL { option value=(d.code()) { (d.description()) } }
                }
            }
            fieldset {
                legend { "Imposta di bollo" }
                p {
                    input type="radio" id="bollo-marca" name="bollo" value="marca" checked;
                    label for="bollo-marca" { "Marca da bollo da " (euro(crate::domain::STAMP_DUTY_CENTS)) }
                }
                p {
                    label for="marca" { "Identificativo della marca da bollo (14 cifre)" }
                    input id="marca" name="marca" type="text" inputmode="numeric" maxlength="14" autocomplete="off";
                }
                p {
                    input type="radio" id="bollo-esenzione" name="bollo" value="esenzione";
                    label for="bollo-esenzione" { "Esenzione" }
                }
                p {
                    label for="esenzione" { "Motivo di esenzione" }
                    select id="esenzione" name="esenzione" {
                        @for code in Exemption::CODES {
                            @if let Ok(e) = Exemption::from_code(code, Some("altro motivo")) {
                                option value=(code) { (code) " — " (e.description()) }
                            }
                        }
                    }
                }
                p {
                    label for="descrizione" { "Descrizione dell'esenzione (solo per «altro motivo»)" }
                    input id="descrizione" name="descrizione" type="text" maxlength="256";
                }
                p {
                    input type="radio" id="bollo-nessuno" name="bollo" value="nessuno";
                    label for="bollo-nessuno" { "Nessuno (certificati esenti per legge: nascita, matrimonio, unione civile)" }
                }
            }
            p { button type="submit" { "Richiedi il certificato" } }
        }
        h2 { "I Suoi certificati" }
        @if mine.is_empty() {
            p { "Non ha ancora richiesto certificati." }
        } @else {
            table id="emessi" {
                caption { "Certificati rilasciati a Lei o che La riguardano" }
                thead { tr { th scope="col" { "Certificato" } th scope="col" { "Intestatario" } th scope="col" { "Rilasciato il" } th scope="col" { "Documento" } } }
                tbody {
                    @for k in &mine {
                        tr {
                            th scope="row" { (k.kind.description()) " n. " (k.id) }
                            td { (k.subject) }
                            td { (it_date(k.issued_at.date())) }
                            td { a href=(format!("/certificati/{}/pdf", k.id)) { "Scarica il PDF del certificato " (k.id) } }
                        }
                    }
                }
            }
        }
    };
    page(
        status,
        layout(p, Some(c), "Certificazione", "/certificati", body),
    )
}

#[derive(Deserialize)]
struct IssuedQuery {
    emesso: Option<String>,
}

async fn certificati(
    State(p): State<Portal>,
    MaybeCitizen(c): MaybeCitizen,
    PageQuery(q): PageQuery<IssuedQuery>,
) -> Response {
    let Some(c) = c else {
        return login_redirect("/certificati");
    };
    let notice = match q.emesso.as_deref() {
        Some(id) => match p
            .store()
            .certificate(&id.chars().take(64).collect::<String>())
            .await
        {
            Ok(Some(k)) if k.requester == c.cf.as_str() || k.subject == c.cf.as_str() => {
                Some(issued_notice(&p, &k))
            }
            _ => None,
        },
        None => None,
    };
    certificati_page(&p, &c, StatusCode::OK, notice).await
}

fn issued_notice(p: &Portal, k: &StoredCertificate) -> Markup {
    html! {
        div class="esito" role="status" {
            h2 { "Certificato rilasciato" }
            p { "Il " (k.kind.description()) " n. " (k.id) " è pronto, con il sigillo elettronico del Comune." }
            p { a href=(format!("/certificati/{}/pdf", k.id)) { "Scarica il certificato " (k.id) " (PDF)" } }
            p { "Chi lo riceve può verificarlo alla pagina " a href=(verification_url(p, k)) { "di verifica del certificato " (k.id) } " con il codice " (k.verification_code) "." }
        }
    }
}

#[derive(Deserialize)]
struct CertificateForm {
    csrf: Option<String>,
    tipo: String,
    soggetto: Option<String>,
    altro: Option<String>,
    destinazione: Option<u16>,
    bollo: Option<String>,
    marca: Option<String>,
    esenzione: Option<u16>,
    descrizione: Option<String>,
}

async fn certificati_post(
    State(p): State<Portal>,
    MaybeCitizen(c): MaybeCitizen,
    headers: HeaderMap,
    form: Result<Form<CertificateForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some(c) = c else {
        return login_redirect("/certificati");
    };
    let Ok(Form(f)) = form else {
        return certificati_page(
            &p,
            &c,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(refusal_notice(
                "Il modulo è incompleto: scelga il certificato e riprovi.",
            )),
        )
        .await;
    };
    if let Err(e) = check_form(&p, &c, &headers, f.csrf.as_deref()) {
        return failure_page(&p, Some(&c), &e);
    }
    let subject = match f.soggetto.as_deref() {
        Some("altro") => f.altro.clone(),
        other => other.map(str::to_string),
    };
    let stamp = match f.bollo.as_deref() {
        Some("esenzione") => StampChoice::Exemption {
            code: f.esenzione.unwrap_or(0),
            description: f.descrizione.clone().filter(|d| !d.trim().is_empty()),
        },
        Some("nessuno") => StampChoice::None,
        _ => StampChoice::Marca(f.marca.clone().unwrap_or_default()),
    };
    let req = IssueRequest {
        kind: f.tipo,
        subject,
        destination: f.destinazione.unwrap_or(0),
        stamp,
    };
    match p.issue(&c, req).await {
        Ok(k) => Redirect::to(&format!("/certificati?emesso={}", k.id)).into_response(),
        Err(Failure::NotLoggedIn) => login_redirect("/certificati"),
        Err(Failure::Internal(e)) => failure_page(&p, Some(&c), &Failure::Internal(e)),
        Err(Failure::RateLimited { retry_after }) => {
            failure_page(&p, Some(&c), &Failure::RateLimited { retry_after })
        }
        Err(f) => certificati_page(&p, &c, f.status(), Some(refusal_notice(&f.message()))).await,
    }
}

fn refusal_notice(message: &str) -> Markup {
    html! {
        div class="rifiuto" role="alert" {
            h2 { "Richiesta non accolta" }
            p { (message) }
        }
    }
}

async fn download(
    State(p): State<Portal>,
    MaybeCitizen(c): MaybeCitizen,
    PagePath(id): PagePath<String>,
) -> Response {
    let Some(c) = c else {
        return login_redirect("/certificati");
    };
    match p.download(&c, &id).await {
        Ok(k) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/pdf".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"certificato-{}.pdf\"", k.id),
                ),
            ],
            k.pdf,
        )
            .into_response(),
        Err(f) => failure_page(&p, Some(&c), &f),
    }
}

async fn autocertificazione(State(p): State<Portal>, MaybeCitizen(c): MaybeCitizen) -> Response {
    let Some(c) = c else {
        return login_redirect("/autocertificazione");
    };
    autocertificazione_page(&p, &c, StatusCode::OK, None)
}

fn fact_label(f: DeclaredFact) -> &'static str {
    match f {
        DeclaredFact::Nascita => "Data e luogo di nascita",
        DeclaredFact::Residenza => "Residenza",
        DeclaredFact::Cittadinanza => "Cittadinanza",
        DeclaredFact::StatoCivile => "Stato civile",
        DeclaredFact::StatoDiFamiglia => "Stato di famiglia",
        DeclaredFact::EsistenzaInVita => "Esistenza in vita",
        DeclaredFact::CodiceFiscale => "Codice fiscale",
    }
}

fn autocertificazione_page(
    p: &Portal,
    c: &Citizen,
    status: StatusCode,
    notice: Option<Markup>,
) -> Response {
    let body = html! {
        h1 { "Autocertificazione" }
        @if let Some(n) = notice { (n) }
        p { "Scelga i fatti da dichiarare: il portale prepara la dichiarazione sostitutiva di certificazione (art. 46 D.P.R. 445/2000) con i Suoi dati anagrafici. La firmi e la consegni a chi gliela chiede: non serve marca da bollo." }
        form method="post" action="/autocertificazione" class="modulo" {
            input type="hidden" name="csrf" value=(c.csrf);
            fieldset {
                legend { "Fatti da dichiarare" }
                @for f in DeclaredFact::ALL {
                    p {
                        input type="checkbox" id=(format!("fatto-{}", f.slug())) name="fatto" value=(f.slug());
                        label for=(format!("fatto-{}", f.slug())) { (fact_label(f)) }
                    }
                }
            }
            p { button type="submit" { "Scarica la dichiarazione (PDF)" } }
        }
    };
    page(
        status,
        layout(
            p,
            Some(c),
            "Autocertificazione",
            "/autocertificazione",
            body,
        ),
    )
}

async fn autocertificazione_post(
    State(p): State<Portal>,
    MaybeCitizen(c): MaybeCitizen,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(c) = c else {
        return login_redirect("/autocertificazione");
    };
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let token = pairs
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    if let Err(e) = check_form(&p, &c, &headers, token) {
        return failure_page(&p, Some(&c), &e);
    }
    let facts: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "fatto")
        .map(|(_, v)| v.clone())
        .take(16)
        .collect();
    match p.declaration(&c, &facts).await {
        Ok(pdf) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/pdf"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"autocertificazione.pdf\"",
                ),
            ],
            pdf,
        )
            .into_response(),
        Err(f @ Failure::Invalid { .. }) => {
            autocertificazione_page(&p, &c, f.status(), Some(refusal_notice(&f.message())))
        }
        Err(f) => failure_page(&p, Some(&c), &f),
    }
}

/// The sign-out page (GET `/esci`): one button, since signing out is a POST with the token.
pub(crate) async fn logout_page(
    State(p): State<Portal>,
    MaybeCitizen(c): MaybeCitizen,
) -> Response {
    let Some(c) = c else {
        return Redirect::to("/").into_response();
    };
    let body = html! {
        h1 { "Esci" }
        p { "Uscendo chiude la sessione del portale e quella di Cohesion." }
        form method="post" action="/esci" {
            input type="hidden" name="csrf" value=(c.csrf);
            button type="submit" { "Esci dal portale" }
        }
    };
    page(StatusCode::OK, layout(&p, Some(&c), "Esci", "/esci", body))
}

/// The public verification page.
pub(crate) fn verification_page(
    p: &Portal,
    c: Option<&Citizen>,
    id: &str,
    code: &str,
    found: Option<&StoredCertificate>,
) -> Response {
    let body = html! {
        h1 { "Verifica di un certificato" }
        @match found {
            Some(k) => {
                div class="esito" role="status" {
                    p class="valido" { strong { "Certificato valido." } }
                    p { "Il certificato n. " (k.id) " è un " (k.kind.description()) " rilasciato dal Comune di " (p.municipality().name) " il " (it_date(k.issued_at.date())) "." }
                    p { "Impronta SHA-256 dell'originale: " code { (k.sha256) } }
                    p { a href=(format!("/verifica/{}?codice={}&pdf=1", k.id, k.verification_code)) { "Scarica l'originale con il sigillo (PDF)" } }
                }
            }
            None => {
                div class="rifiuto" role="alert" {
                    p { strong { "Certificato non valido." } }
                    p { "Nessun certificato corrisponde al numero " (id.chars().take(64).collect::<String>()) " con il codice indicato" @if code.is_empty() { " (manca il codice di verifica)" } ". Controlli di aver copiato numero e codice dal certificato." }
                }
            }
        }
        p { a href="/" { "Torna alla pagina iniziale" } }
    };
    let _ = (pdf_path, rfc3339, PreEscaped(""));
    page(StatusCode::OK, layout(p, c, "Verifica", "", body))
}
