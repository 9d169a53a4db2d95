//! What the pages and the JSON API both do: read the record, compute the options, issue,
//! download, declare, verify — each with its audit line and rate limits.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tscns_cert::CodiceFiscale;

use super::{Limit, Portal};
use crate::documents::{self, CertificateContent, DeclaredFact, SealInfo};
use crate::domain::{
    eligibility, CertificateKind, Destination, Eligibility, Exemption, MarcaId, Purpose, Refusal,
    RegistryRecord, Stamp, StampDuty, FEE_EXEMPT_CENTS, FEE_WITH_BOLLO_CENTS, STAMP_DUTY_CENTS,
};
use crate::store::{
    AuditEntry, RateDecision, SelfDeclarationRecord, Store, StoreError, StoredCertificate,
};

/// The logged-in citizen of a request.
#[derive(Debug, Clone)]
pub(crate) struct Citizen {
    /// Codice fiscale, exactly as issued (never folded to its base code).
    pub cf: CodiceFiscale,
    /// Login level 0..=2.
    pub level: i64,
    /// Session id.
    pub session_id: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// Client address.
    pub remote: String,
}

impl Citizen {
    pub(crate) fn cf_str(&self) -> String {
        self.cf.as_str().to_string()
    }
}

/// Why a request was not served; [`Failure::code`] and [`Failure::message`] are the API's
/// `{error, message}`.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No valid session.
    NotLoggedIn,
    /// A refusal of the eligibility rules.
    Refused(Refusal),
    /// Not found, or not the citizen's (the same answer, so nothing leaks).
    NotFound,
    /// A bad request body or parameter.
    Invalid { code: &'static str, message: String },
    /// A request whose query string or path cannot be read (400).
    BadRequest {
        code: &'static str,
        message: &'static str,
    },
    /// The marca da bollo was used already.
    MarcaUsed,
    /// Over a rate limit.
    RateLimited { retry_after: u64 },
    /// A cross-site request or a missing/wrong CSRF token.
    Csrf,
    /// Something broke inside.
    Internal(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::MarcaAlreadyUsed(_) => Failure::MarcaUsed,
            other => Failure::Internal(other.to_string()),
        }
    }
}

/// The stable code of a refusal (its serde tag, e.g. `not_in_family`).
pub(crate) fn refusal_code(r: &Refusal) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| {
            v.get("refusal")
                .and_then(|c| c.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "refused".to_string())
}

impl Failure {
    pub(crate) fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode as S;
        match self {
            Failure::NotLoggedIn => S::UNAUTHORIZED,
            Failure::Refused(_) | Failure::Csrf => S::FORBIDDEN,
            Failure::NotFound => S::NOT_FOUND,
            Failure::Invalid { .. } => S::UNPROCESSABLE_ENTITY,
            Failure::BadRequest { .. } => S::BAD_REQUEST,
            Failure::MarcaUsed => S::CONFLICT,
            Failure::RateLimited { .. } => S::TOO_MANY_REQUESTS,
            Failure::Internal(_) => S::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn code(&self) -> String {
        match self {
            Failure::NotLoggedIn => "not_logged_in".into(),
            Failure::Refused(r) => refusal_code(r),
            Failure::NotFound => "not_found".into(),
            Failure::Invalid { code, .. } | Failure::BadRequest { code, .. } => (*code).into(),
            Failure::MarcaUsed => "marca_already_used".into(),
            Failure::RateLimited { .. } => "rate_limited".into(),
            Failure::Csrf => "csrf".into(),
            Failure::Internal(_) => "internal".into(),
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            Failure::NotLoggedIn => "Sessione assente o scaduta: acceda di nuovo al portale.".into(),
            Failure::Refused(r) => r.to_string(),
            Failure::NotFound => "Documento non trovato, oppure non riguarda Lei né la Sua famiglia.".into(),
            Failure::Invalid { message, .. } => message.clone(),
            Failure::BadRequest { message, .. } => (*message).into(),
            Failure::MarcaUsed => "Questa marca da bollo è già stata usata per un altro documento: ogni marca vale per un solo documento, ne indichi un'altra.".into(),
            Failure::RateLimited { retry_after } => format!(
                "Troppe richieste in poco tempo: riprovi tra {retry_after} secondi."
            ),
            Failure::Csrf => "Richiesta rifiutata: il modulo non proviene da questo portale o è scaduto. Ricarichi la pagina e riprovi.".into(),
            Failure::Internal(_) => "Errore interno del portale: riprovi più tardi.".into(),
        }
    }
}

/// How the stamp of a request is given.
#[derive(Debug, Clone)]
pub(crate) enum StampChoice {
    None,
    Marca(String),
    Exemption {
        code: u16,
        description: Option<String>,
    },
}

/// A certificate request, as the API and the form give it.
#[derive(Debug, Clone)]
pub(crate) struct IssueRequest {
    pub kind: String,
    pub subject: Option<String>,
    pub destination: u16,
    pub stamp: StampChoice,
}

/// One online kind for one subject: available, or why not.
#[derive(Debug, Clone)]
pub(crate) struct KindOption {
    pub kind: CertificateKind,
    pub refusal: Option<Refusal>,
    pub stamp_required: bool,
    pub fee_cents: Option<u32>,
}

/// The answer to a query string the handler cannot read (never the parser's English text).
pub(crate) const BAD_QUERY: Failure = Failure::BadRequest {
    code: "bad_query",
    message:
        "I parametri dell'indirizzo (dopo il «?») non sono validi: controlli l'indirizzo e riprovi.",
};

/// The answer to a path the handler cannot read (never the parser's English text).
pub(crate) const BAD_PATH: Failure = Failure::BadRequest {
    code: "bad_path",
    message: "L'indirizzo richiesto non è valido: controlli l'indirizzo e riprovi.",
};

fn invalid(code: &'static str, message: impl Into<String>) -> Failure {
    Failure::Invalid {
        code,
        message: message.into(),
    }
}

/// Parses a kind given as ANPR code or slug.
pub(crate) fn parse_kind(s: &str) -> Result<CertificateKind, Failure> {
    let t = s.trim();
    let k = match t.parse::<u16>() {
        Ok(n) => CertificateKind::from_code(n).ok(),
        Err(_) => CertificateKind::from_slug(t).ok(),
    };
    k.ok_or_else(|| {
        invalid(
            "unknown_kind",
            "Tipo di certificato sconosciuto: indichi il codice ANPR (1-20) o il nome, per esempio «residenza».",
        )
    })
}

/// Parses a codice fiscale from a request.
pub(crate) fn parse_cf(s: &str) -> Result<CodiceFiscale, Failure> {
    CodiceFiscale::parse(&s.trim().to_ascii_uppercase()).map_err(|_| {
        invalid(
            "bad_codice_fiscale",
            "Il codice fiscale indicato non è valido: controlli i 16 caratteri.",
        )
    })
}

/// The per-address rate-limit key of a client address: an IPv4 address (an IPv4-mapped IPv6
/// one included) as itself, an IPv6 address by its /64 (one subscriber's whole prefix: rotating
/// addresses inside it is free), anything else as given.
pub(crate) fn address_bucket(remote: &str) -> String {
    remote
        .parse::<std::net::IpAddr>()
        .map_or_else(|_| remote.to_string(), tscns_cohesion::client_prefix)
}

impl Portal {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    async fn audit(
        &self,
        who: Option<&Citizen>,
        remote: &str,
        action: &str,
        subject: Option<&str>,
        outcome: &str,
    ) -> Result<(), Failure> {
        self.inner
            .store
            .audit(&AuditEntry {
                actor: who.map_or_else(|| "-".to_string(), Citizen::cf_str),
                auth_level: who.map_or(-1, |c| c.level),
                action: action.to_string(),
                subject: subject.map(str::to_string),
                at: self.now(),
                remote_addr: remote.to_string(),
                outcome: outcome.chars().take(200).collect(),
            })
            .await?;
        Ok(())
    }

    /// Counts a Cohesion callback from `remote` (per address, see [`address_bucket`]); over
    /// [`RateLimits::callback`](super::RateLimits::callback) times the per-address factor: 429,
    /// before anything is audited.
    pub(crate) async fn limit_callback(&self, remote: &str) -> Result<(), Failure> {
        let limits = &self.inner.config.limits;
        let limit = Limit {
            limit: limits
                .callback
                .limit
                .saturating_mul(limits.per_address_factor.max(1)),
            window_secs: limits.callback.window_secs,
        };
        self.limit("callback", limit, None, remote).await
    }

    /// Counts a hit per citizen (if any) and per address; over either limit: 429.
    async fn limit(
        &self,
        what: &str,
        limit: Limit,
        who: Option<&Citizen>,
        remote: &str,
    ) -> Result<(), Failure> {
        let store: &Store = &self.inner.store;
        let now = self.now();
        let factor = self.inner.config.limits.per_address_factor.max(1);
        let mut checks = vec![(
            format!("{what}:ip:{}", address_bucket(remote)),
            limit.limit.saturating_mul(factor),
        )];
        if let Some(c) = who {
            checks.insert(0, (format!("{what}:cf:{}", c.cf.as_str()), limit.limit));
        } else {
            checks[0].1 = limit.limit;
        }
        for (bucket, n) in checks {
            if let RateDecision::Limited { retry_after } = store
                .hit_rate_limit(&bucket, n, limit.window_secs.min(86_400), now)
                .await?
            {
                return Err(Failure::RateLimited { retry_after });
            }
        }
        Ok(())
    }

    async fn record_of(&self, cf: &CodiceFiscale) -> Result<Option<RegistryRecord>, Failure> {
        Ok(self
            .inner
            .store
            .record(&self.inner.config.municipality, cf)
            .await?)
    }

    /// The citizen's own record (audited as `record.view`).
    pub(crate) async fn my_record(&self, c: &Citizen) -> Result<RegistryRecord, Failure> {
        let cf = c.cf_str();
        match self.record_of(&c.cf).await? {
            Some(r) => {
                self.audit(Some(c), &c.remote, "record.view", Some(&cf), "ok")
                    .await?;
                Ok(r)
            }
            None => {
                let r = Refusal::RequesterNotResident;
                self.audit(
                    Some(c),
                    &c.remote,
                    "record.view",
                    Some(&cf),
                    &refusal_code(&r),
                )
                .await?;
                Err(Failure::Refused(r))
            }
        }
    }

    /// The subject's record if the citizen may see it (self or own family), with the citizen's.
    async fn subject_record(
        &self,
        c: &Citizen,
        subject: Option<&str>,
    ) -> Result<(RegistryRecord, RegistryRecord), Failure> {
        let me = self
            .record_of(&c.cf)
            .await?
            .ok_or(Failure::Refused(Refusal::RequesterNotResident))?;
        let subject_cf = match subject.filter(|s| !s.trim().is_empty()) {
            Some(s) => parse_cf(s)?,
            None => c.cf.clone(),
        };
        if subject_cf == c.cf {
            return Ok((me.clone(), me));
        }
        if !me.family_has(&subject_cf) {
            return Err(Failure::Refused(Refusal::NotInFamily));
        }
        let subject = self
            .record_of(&subject_cf)
            .await?
            .ok_or(Failure::Refused(Refusal::NotInFamily))?;
        Ok((me, subject))
    }

    /// The 15 online kinds for `subject` (default: the citizen), each available or not.
    pub(crate) async fn options(
        &self,
        c: &Citizen,
        subject: Option<&str>,
    ) -> Result<(RegistryRecord, Vec<KindOption>), Failure> {
        let (me, subj) = match self.subject_record(c, subject).await {
            Ok(x) => x,
            Err(f) => {
                self.audit(
                    Some(c),
                    &c.remote,
                    "certificate.options",
                    subject,
                    &f.code(),
                )
                .await?;
                return Err(f);
            }
        };
        let today = self.now().date();
        let options = CertificateKind::ALL
            .iter()
            .copied()
            .filter(|k| k.online())
            .map(|kind| {
                let e = eligibility(Some(&me), &subj, kind, &Purpose::ordinary(), today);
                let stamp_required = !kind.is_stato_civile_extract();
                match e {
                    Ok(Eligibility {
                        stamp_duty,
                        fee_cents,
                        ..
                    }) => KindOption {
                        kind,
                        refusal: None,
                        stamp_required: matches!(stamp_duty, StampDuty::Required { .. }),
                        fee_cents,
                    },
                    Err(r) => KindOption {
                        kind,
                        refusal: Some(r),
                        stamp_required,
                        fee_cents: Some(if stamp_required {
                            FEE_WITH_BOLLO_CENTS
                        } else {
                            FEE_EXEMPT_CENTS
                        }),
                    },
                }
            })
            .collect();
        self.audit(
            Some(c),
            &c.remote,
            "certificate.options",
            Some(subj.person.codice_fiscale.as_str()),
            "ok",
        )
        .await?;
        Ok((subj, options))
    }

    /// Issues a certificate: rate limit, eligibility, stamp, PDF, seal, one store transaction.
    pub(crate) async fn issue(
        &self,
        c: &Citizen,
        req: IssueRequest,
    ) -> Result<StoredCertificate, Failure> {
        let result = self.issue_inner(c, &req).await;
        if let Err(f) = &result {
            if !matches!(f, Failure::Internal(_) | Failure::RateLimited { .. }) {
                self.audit(
                    Some(c),
                    &c.remote,
                    "certificate.issue",
                    req.subject.as_deref().or(Some(c.cf.as_str())),
                    &f.code(),
                )
                .await?;
            }
        }
        result
    }

    async fn issue_inner(
        &self,
        c: &Citizen,
        req: &IssueRequest,
    ) -> Result<StoredCertificate, Failure> {
        self.limit("issue", self.inner.config.limits.issue, Some(c), &c.remote)
            .await?;
        let kind = parse_kind(&req.kind)?;
        let destination = Destination::from_code(req.destination).map_err(|_| {
            invalid(
                "bad_destination",
                "Destinazione d'uso sconosciuta: usi un codice da 0 a 4.",
            )
        })?;
        let stamp = match &req.stamp {
            StampChoice::None => None,
            StampChoice::Marca(m) => Some(Stamp::Marca(MarcaId::parse(m).map_err(|_| {
                invalid(
                    "bad_marca",
                    "L'identificativo della marca da bollo ha esattamente 14 cifre.",
                )
            })?)),
            StampChoice::Exemption { code, description } => Some(Stamp::Exempt(
                Exemption::from_code(*code, description.as_deref()).map_err(|_| {
                    invalid(
                        "bad_exemption",
                        "Motivo di esenzione non valido: usi un codice della Tabella 39 e, per il codice 99, una descrizione di al massimo 256 caratteri.",
                    )
                })?,
            )),
        };
        let (me, subject) = self.subject_record(c, req.subject.as_deref()).await?;
        let exemption = match &stamp {
            Some(Stamp::Exempt(e)) => Some(e.clone()),
            _ => None,
        };
        let now = self.now();
        let ok = eligibility(
            Some(&me),
            &subject,
            kind,
            &Purpose {
                destination,
                exemption,
            },
            now.date(),
        )
        .map_err(Failure::Refused)?;
        ok.check_stamp(stamp.as_ref()).map_err(|_| {
            let message = match ok.stamp_duty {
                StampDuty::Required { .. } => format!(
                    "Questo certificato richiede l'imposta di bollo di EUR {},{:02}: indichi l'identificativo di 14 cifre della marca da bollo oppure un motivo di esenzione.",
                    STAMP_DUTY_CENTS / 100,
                    STAMP_DUTY_CENTS % 100
                ),
                StampDuty::ExemptByLaw { .. } => "Questo certificato è esente da bollo per legge: non indichi né marca né esenzione.".to_string(),
                StampDuty::Exempt { .. } => "Indichi lo stesso motivo di esenzione richiesto.".to_string(),
            };
            invalid("stamp_mismatch", message)
        })?;
        if let Some(Stamp::Marca(m)) = &stamp {
            if self.inner.store.marca_used(m.as_str()).await? {
                return Err(Failure::MarcaUsed);
            }
        }
        let ids = Store::new_certificate_ids(&self.inner.config.municipality)?;
        let base = self.inner.config.base();
        let key = self.inner.seal.clone();
        let municipality = self.inner.municipality.clone();
        let record = subject.clone();
        let stamp_c = stamp.clone();
        let ids_c = ids.clone();
        let pdf = tokio::task::spawn_blocking(move || {
            let pdf = documents::certificate_pdf(&CertificateContent {
                record: &record,
                kind,
                destination,
                stamp: stamp_c.as_ref(),
                ids: &ids_c,
                issued_at: now,
                portal_base_url: &base,
            })?;
            let info = SealInfo {
                name: format!("Comune di {}", municipality.name),
                location: municipality.name.clone(),
                reason: format!(
                    "Certificato n. {} rilasciato dall'Ufficio Anagrafe",
                    ids_c.id
                ),
                signing_time: now,
            };
            documents::seal_vec(pdf, key.as_ref(), &info)
        })
        .await
        .map_err(|e| Failure::Internal(format!("issuing task: {e}")))?
        .map_err(|e| Failure::Internal(format!("certificate PDF: {e}")))?;
        let (pdf, sha256) = (pdf.pdf, hex::encode(pdf.sha256));
        let subject_cf = subject.person.codice_fiscale.as_str().to_string();
        let certificate = StoredCertificate {
            id: ids.id.clone(),
            verification_code: ids.verification_code.clone(),
            municipality: self.inner.config.municipality.clone(),
            kind,
            subject: subject_cf.clone(),
            requester: c.cf_str(),
            stamp,
            destination,
            issued_at: now,
            sha256,
            pdf,
        };
        let audit = AuditEntry {
            actor: c.cf_str(),
            auth_level: c.level,
            action: "certificate.issue".into(),
            subject: Some(subject_cf),
            at: now,
            remote_addr: c.remote.clone(),
            outcome: format!("ok {}", ids.id),
        };
        self.inner.store.issue(&certificate, &audit).await?;
        Ok(certificate)
    }

    /// The citizen's certificates, as requester or subject.
    pub(crate) async fn my_certificates(
        &self,
        c: &Citizen,
    ) -> Result<Vec<StoredCertificate>, Failure> {
        let list = self.inner.store.certificates_of(c.cf.as_str()).await?;
        self.audit(
            Some(c),
            &c.remote,
            "certificate.list",
            Some(c.cf.as_str()),
            "ok",
        )
        .await?;
        Ok(list)
    }

    /// A certificate's sealed PDF, for its requester or subject only.
    pub(crate) async fn download(
        &self,
        c: &Citizen,
        id: &str,
    ) -> Result<StoredCertificate, Failure> {
        self.limit(
            "download",
            self.inner.config.limits.download,
            Some(c),
            &c.remote,
        )
        .await?;
        let id: String = id.chars().take(64).collect();
        let cert = self.inner.store.certificate(&id).await?;
        let mine = cert.filter(|k| k.requester == c.cf.as_str() || k.subject == c.cf.as_str());
        match mine {
            Some(k) => {
                self.audit(
                    Some(c),
                    &c.remote,
                    "certificate.download",
                    Some(&k.subject),
                    &format!("ok {}", k.id),
                )
                .await?;
                Ok(k)
            }
            None => {
                self.audit(
                    Some(c),
                    &c.remote,
                    "certificate.download",
                    None,
                    &format!("not_found {id}"),
                )
                .await?;
                Err(Failure::NotFound)
            }
        }
    }

    /// A self-declaration PDF of the chosen facts.
    pub(crate) async fn declaration(
        &self,
        c: &Citizen,
        facts: &[String],
    ) -> Result<Vec<u8>, Failure> {
        self.limit(
            "download",
            self.inner.config.limits.download,
            Some(c),
            &c.remote,
        )
        .await?;
        let mut chosen = Vec::new();
        for f in facts {
            let fact = DeclaredFact::from_slug(f.trim()).ok_or_else(|| {
                invalid(
                    "unknown_fact",
                    "Fatto da dichiarare sconosciuto: scelga tra nascita, residenza, cittadinanza, stato-civile, stato-di-famiglia, esistenza-in-vita, codice-fiscale.",
                )
            })?;
            if !chosen.contains(&fact) {
                chosen.push(fact);
            }
        }
        if chosen.is_empty() {
            return Err(invalid("no_facts", "Scelga almeno un fatto da dichiarare."));
        }
        let record = self
            .record_of(&c.cf)
            .await?
            .ok_or(Failure::Refused(Refusal::RequesterNotResident))?;
        let now = self.now();
        let chosen_c = chosen.clone();
        let pdf = tokio::task::spawn_blocking(move || {
            documents::self_declaration_pdf(&record, &chosen_c, now)
        })
        .await
        .map_err(|e| Failure::Internal(format!("declaration task: {e}")))?
        .map_err(|e| Failure::Internal(format!("declaration PDF: {e}")))?;
        let id = Store::new_certificate_ids(&self.inner.config.municipality)?.id;
        let rec = SelfDeclarationRecord {
            id: format!("D-{id}"),
            declarant: c.cf_str(),
            facts: chosen.iter().map(|f| f.slug().to_string()).collect(),
            issued_at: now,
            sha256: hex::encode(Sha256::digest(&pdf)),
        };
        let audit = AuditEntry {
            actor: c.cf_str(),
            auth_level: c.level,
            action: "declaration.issue".into(),
            subject: Some(c.cf_str()),
            at: now,
            remote_addr: c.remote.clone(),
            outcome: format!("ok {}", rec.id),
        };
        self.inner
            .store
            .record_self_declaration(&rec, &audit)
            .await?;
        Ok(pdf)
    }

    /// Public verification: the certificate if the code is its verification code, with its
    /// sealed PDF when `with_pdf` (else `pdf` is empty: the blob is not read).
    pub(crate) async fn verify(
        &self,
        remote: &str,
        id: &str,
        code: &str,
        with_pdf: bool,
    ) -> Result<Option<StoredCertificate>, Failure> {
        self.limit("verify", self.inner.config.limits.verify, None, remote)
            .await?;
        let id: String = id.chars().take(64).collect();
        let code: String = code.chars().take(64).collect();
        let found = if with_pdf {
            self.inner.store.verify_certificate(&id, &code).await?
        } else {
            self.inner
                .store
                .verify_certificate_metadata(&id, &code)
                .await?
        };
        let outcome = if found.is_some() {
            "valid"
        } else {
            "not_valid"
        };
        self.audit(
            None,
            remote,
            "certificate.verify",
            None,
            &format!("{outcome} {id}"),
        )
        .await?;
        Ok(found)
    }

    /// Audits a login attempt.
    pub(crate) async fn audit_login(
        &self,
        who: Option<&Citizen>,
        remote: &str,
        outcome: &str,
    ) -> Result<(), Failure> {
        self.audit(who, remote, "login", who.map(|c| c.cf.as_str()), outcome)
            .await
    }

    /// Audits a logout.
    pub(crate) async fn audit_logout(&self, c: &Citizen) -> Result<(), Failure> {
        self.audit(Some(c), &c.remote, "logout", Some(c.cf.as_str()), "ok")
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::address_bucket;

    #[test]
    fn ipv6_addresses_share_a_bucket_per_64() {
        assert_eq!(
            address_bucket("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            address_bucket("2001:db8:1:2::1"),
            address_bucket("2001:db8:1:2:ffff::9")
        );
        assert_ne!(
            address_bucket("2001:db8:1:2::1"),
            address_bucket("2001:db8:1:3::1")
        );
        assert_eq!(address_bucket("192.0.2.7"), "192.0.2.7");
        assert_eq!(address_bucket("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(address_bucket("-"), "-");
    }
}
