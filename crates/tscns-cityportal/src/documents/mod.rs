//! Documents: certificate PDFs (PDF/A-2b, A4, Italian, embedded font, QR code of the
//! verification URL) sealed PAdES-B-B with the municipality's key, self-declarations
//! (DPR 445/2000 art. 46, no stamp, no seal), and [`verify`].

mod layout;
mod pdf;
pub mod pdfa;
mod qr;
mod seal;
mod syntax;
mod verify;

use time::OffsetDateTime;

use crate::domain::record::date_serde::italian;
use crate::domain::{
    CertificateKind, Destination, FamilyMember, Person, RegistryRecord, Sex, Stamp,
};
use crate::store::CertificateIds;
use layout::{paginate, Align, Block, Writer, MARGIN, PAGE_HEIGHT};
use pdf::{fonts, Document, PAGE_WIDTH};

pub(crate) use pdf::shared_runs;
pub use seal::{
    seal, seal_vec, seal_with_digest, Pkcs8Key, SealInfo, SealKey, SealedPdf, CONTENTS_RESERVED,
};
pub use verify::{verify, Sealed};

/// Why a document could not be made or verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The embedded font could not be loaded (a broken build).
    #[error("the embedded font could not be loaded")]
    Font,
    /// The document could not be written (for example a verification URL too long for a QR
    /// code).
    #[error("PDF export: {0}")]
    Export(String),
    /// The PDF to seal is not one this crate produced (no classic xref, objects in streams...).
    #[error("cannot seal this PDF: {0}")]
    Unsealable(String),
    /// The seal key failed to sign.
    #[error("the seal key could not sign: {0}")]
    Sign(String),
    /// The seal key or certificate is unusable.
    #[error("seal key: {0}")]
    Key(String),
    /// Verification failed.
    #[error("the seal does not verify: {0}")]
    Invalid(String),
}

/// What to put on a certificate.
#[derive(Debug, Clone)]
pub struct CertificateContent<'a> {
    /// The subject's record, as of the issue date.
    pub record: &'a RegistryRecord,
    /// The kind.
    pub kind: CertificateKind,
    /// Destination of use.
    pub destination: Destination,
    /// How the stamp duty was paid; `None` when exempt by law (stato civile extracts).
    pub stamp: Option<&'a Stamp>,
    /// Id and verification code.
    pub ids: &'a CertificateIds,
    /// Issue time (its date is printed; the record is read as of it).
    pub issued_at: OffsetDateTime,
    /// Base URL of the portal, e.g. `https://comune.example/portale`.
    pub portal_base_url: &'a str,
}

/// The verification URL printed as QR code: `<base>/verifica/<id>?codice=<code>`.
pub fn verification_url(portal_base_url: &str, ids: &CertificateIds) -> String {
    format!(
        "{}/verifica/{}?codice={}",
        portal_base_url.trim_end_matches('/'),
        ids.id,
        ids.verification_code
    )
}

/// The notice of DPR 445/2000 art. 40 c. 02 every certificate carries (not for use abroad).
pub const ART_40_NOTICE: &str = "Il presente certificato non può essere prodotto agli organi della pubblica amministrazione o ai privati gestori di pubblici servizi (art. 40, comma 02, D.P.R. 445/2000).";
/// The notice of a certificate for use abroad.
pub const ABROAD_NOTICE: &str = "Il presente certificato è rilasciato solo per l'estero.";

fn nato(sex: Sex) -> &'static str {
    match sex {
        Sex::M => "nato",
        Sex::F => "nata",
    }
}

fn citizenship(code: u16) -> String {
    // ISTAT country codes; 100 = Italia.
    match code {
        100 => "italiana".to_string(),
        other => format!("straniera (Stato con codice ISTAT {other})"),
    }
}

fn birth_place(p: &Person) -> String {
    let bp = &p.birth_place;
    match &bp.province {
        Some(prov) if bp.country.eq_ignore_ascii_case("ITALIA") => {
            format!("{} ({prov})", bp.municipality)
        }
        _ => format!("{} ({})", bp.municipality, bp.country),
    }
}

fn name_of(record: &RegistryRecord, cf: Option<&tscns_cert::CodiceFiscale>) -> String {
    let Some(cf) = cf else {
        return String::new();
    };
    record
        .members
        .iter()
        .find(|m| m.codice_fiscale == *cf)
        .map(|m| {
            format!(
                "{} {} (codice fiscale {})",
                m.given_name,
                m.surname,
                cf.as_str()
            )
        })
        .unwrap_or_else(|| format!("persona con codice fiscale {}", cf.as_str()))
}

fn residence(record: &RegistryRecord) -> String {
    match &record.family {
        Some(f) if !record.person.aire => format!(
            "{} {}, {} {} ({}), dal {}",
            f.address.street,
            f.address.number,
            f.address.postal_code,
            record.municipality.name.to_uppercase(),
            record.municipality.province,
            italian(f.since)
        ),
        _ => format!(
            "{} ({})",
            record.municipality.name.to_uppercase(),
            record.municipality.province
        ),
    }
}

/// The facts a kind certifies, as sentences, from the record as of `day`.
pub fn certified_facts(
    record: &RegistryRecord,
    kind: CertificateKind,
    day: time::Date,
) -> Vec<String> {
    use CertificateKind as K;
    let p = &record.person;
    let mut facts = Vec::new();
    let living_members = || -> Vec<&FamilyMember> {
        record
            .members
            .iter()
            .filter(|m| m.death_date.is_none_or(|d| d > day))
            .collect()
    };
    match kind {
        K::Nascita => {
            facts.push(format!(
                "è {} a {} il {}",
                nato(p.sex),
                birth_place(p),
                italian(p.birth_date)
            ));
            if let Some(f) = &p.father {
                facts.push(format!("paternità: {f}"));
            }
            if let Some(m) = &p.mother {
                facts.push(format!("maternità: {m}"));
            }
        }
        K::Morte => match p.death_date {
            Some(d) => facts.push(format!("è deceduto/a il {}", italian(d))),
            None => facts.push("nel registro non risulta alcun decesso".into()),
        },
        K::Matrimonio => match &p.marriage {
            Some(m) => facts.push(format!(
                "ha contratto matrimonio il {} a {} con {}",
                italian(m.date),
                m.place,
                name_of(record, p.spouse.as_ref())
            )),
            None => facts.push("nel registro non risulta alcun matrimonio".into()),
        },
        K::UnioneCivile => match &p.civil_union {
            Some(u) => facts.push(format!(
                "ha costituito unione civile il {} a {} con {}",
                italian(u.date),
                u.place,
                name_of(record, p.partner.as_ref())
            )),
            None => facts.push("nel registro non risulta alcuna unione civile".into()),
        },
        K::ContrattoDiConvivenza => match &p.cohabitation_contract {
            Some(c) => facts.push(format!(
                "ha stipulato contratto di convivenza il {} a {}",
                italian(c.date),
                c.place
            )),
            None => facts.push("nel registro non risulta alcun contratto di convivenza".into()),
        },
        K::Cittadinanza | K::StoricoCittadinanza => {
            facts.push(format!("è in possesso della cittadinanza {}", citizenship(p.citizenship)))
        }
        K::EsistenzaInVita => facts.push(format!("è in vita alla data del {}", italian(day))),
        K::Residenza | K::StoricoResidenza | K::StoricoResidenzaAllaData | K::Cancellazione => {
            facts.push(format!("è residente in {}", residence(record)))
        }
        K::ResidenzaInConvivenza => {
            facts.push(format!("è residente in {}", residence(record)));
            facts.push("fa parte di una convivenza anagrafica (art. 5 D.P.R. 223/1989)".into());
        }
        K::ResidenzaAire => match &p.aire_residence {
            Some(a) => facts.push(format!(
                "è iscritto/a all'Anagrafe degli italiani residenti all'estero (AIRE) di questo Comune, residente in {}, {}, {}",
                a.country, a.city, a.address
            )),
            None => facts.push(
                "è iscritto/a all'Anagrafe degli italiani residenti all'estero (AIRE) di questo Comune".into(),
            ),
        },
        K::StatoCivile => facts.push(format!("è di stato civile: {}", p.civil_status)),
        K::StatoLibero => facts.push(format!(
            "è di stato libero (stato civile: {})",
            p.civil_status
        )),
        K::StatoDiFamiglia
        | K::StatoDiFamigliaEStatoCivile
        | K::StatoDiFamigliaAire
        | K::StatoDiFamigliaConParentela => {
            if kind == K::StatoDiFamigliaAire {
                facts.push("la famiglia è iscritta all'AIRE di questo Comune".into());
            } else {
                facts.push(format!("è residente in {}", residence(record)));
            }
            if kind == K::StatoDiFamigliaEStatoCivile {
                facts.push(format!("è di stato civile: {}", p.civil_status));
            }
            facts.push("la famiglia anagrafica è così composta:".into());
            for m in living_members() {
                let mut line = format!(
                    "{} {}, {} il {} a {}, codice fiscale {}",
                    m.surname,
                    m.given_name,
                    nato(m.sex),
                    italian(m.birth_date),
                    m.birth_municipality,
                    m.codice_fiscale.as_str()
                );
                if kind == K::StatoDiFamigliaConParentela {
                    if let Some(r) = m.relationship {
                        line.push_str(&format!(" — {}", r.description()));
                    }
                }
                facts.push(format!("• {line}"));
            }
        }
    }
    facts
}

/// The stamp wording printed on a certificate. Exemption 99's description is not printed.
pub fn stamp_wording(stamp: Option<&Stamp>) -> String {
    match stamp {
        Some(Stamp::Marca(m)) => format!(
            "Imposta di bollo di EUR 16,00 assolta con contrassegno (marca da bollo) n. {m}."
        ),
        Some(Stamp::Exempt(e)) => format!("Esente da imposta di bollo: {}.", e.description()),
        None => "Esente da imposta di bollo ai sensi dell'art. 7 L. 405/1990 (estratto di stato civile).".into(),
    }
}

fn header(w: &mut Writer<'_>, record: &RegistryRecord) {
    let m = &record.municipality;
    w.paragraph(
        &format!("COMUNE DI {}", m.name.to_uppercase()),
        16.0,
        true,
        Align::Center,
    );
    w.paragraph(
        &format!(
            "Provincia di {} — Codice catastale {} — Codice ISTAT {}",
            m.province, m.cadastral_code, m.istat_code
        ),
        9.0,
        false,
        Align::Center,
    );
    w.paragraph(
        "Servizi demografici — Ufficio Anagrafe",
        10.0,
        false,
        Align::Center,
    );
    w.rule();
}

/// The unsealed certificate: PDF/A-2b (the rules the writer follows are in [`pdfa`]). Long contents (a large
/// family or convivenza) continue on further pages; every page has the header and the footer
/// with id, verification code, QR code and page number.
pub fn certificate_pdf(c: &CertificateContent<'_>) -> Result<Vec<u8>, DocumentError> {
    let fonts = fonts().ok_or(DocumentError::Font)?;
    let record = c.record;
    let p = &record.person;
    let day = c.issued_at.date();
    let title = c.kind.title();
    let para = |text: String, size: f32, bold: bool, align: Align| Block::Para {
        text,
        size,
        bold,
        align,
    };
    let mut body = vec![
        Block::Space(8.0),
        para(title.clone(), 14.0, true, Align::Center),
        Block::Space(10.0),
        para(
            "L'Ufficiale d'Anagrafe, in base alle risultanze dell'Anagrafe della popolazione residente (ANPR),".into(),
            10.5,
            false,
            Align::Left,
        ),
        para("CERTIFICA CHE".into(), 11.0, true, Align::Center),
        Block::Space(6.0),
        Block::Row("Cognome e nome", format!("{} {}", p.surname, p.given_name)),
        Block::Row("Codice fiscale", p.codice_fiscale.as_str().to_string()),
        Block::Row(
            "Luogo e data di nascita",
            format!("{}, {}", birth_place(p), italian(p.birth_date)),
        ),
        Block::Row(
            "Sesso",
            match p.sex {
                Sex::M => "M".into(),
                Sex::F => "F".into(),
            },
        ),
        Block::Space(6.0),
    ];
    for fact in certified_facts(record, c.kind, day) {
        body.push(para(fact, 10.5, false, Align::Left));
    }
    let notice = if c.destination == Destination::Estero {
        ABROAD_NOTICE
    } else {
        ART_40_NOTICE
    };
    body.extend([
        Block::Space(10.0),
        para(c.destination.wording().into(), 10.0, false, Align::Left),
        para(notice.into(), 10.0, true, Align::Left),
        para(stamp_wording(c.stamp), 10.0, false, Align::Left),
        Block::Space(10.0),
        para(
            format!("{}, {}", record.municipality.name, italian(day)),
            10.5,
            false,
            Align::Left,
        ),
        para("L'Ufficiale d'Anagrafe".into(), 10.5, false, Align::Left),
        para(
            format!(
                "Documento firmato con sigillo elettronico del Comune di {} (PAdES).",
                record.municipality.name
            ),
            9.0,
            false,
            Align::Left,
        ),
    ]);
    let url = verification_url(c.portal_base_url, c.ids);
    let qr_side = 110.0;
    let footer_top = PAGE_HEIGHT - MARGIN - qr_side - 12.0;
    let header_height = 62.0;
    let pages = paginate(fonts, body, footer_top - (MARGIN - 10.0) - header_height);
    let total = pages.len();
    let mut doc = Document::new(
        &format!("{title} — {} {}", p.surname, p.given_name),
        &format!("Comune di {}", record.municipality.name),
        c.issued_at,
    );
    for (n, blocks) in pages.into_iter().enumerate() {
        let mut w = Writer {
            page: doc.page(),
            fonts,
            y: MARGIN - 10.0,
        };
        header(&mut w, record);
        for b in &blocks {
            w.draw(b);
        }
        // Footer: id, code, QR code of the verification URL, page number.
        w.y = footer_top;
        w.rule();
        let top = w.y;
        let text_width = w.width() - qr_side - 10.0;
        w.paragraph_in(
            MARGIN,
            text_width,
            &format!("Certificato n. {}", c.ids.id),
            10.0,
            true,
            Align::Left,
        );
        w.paragraph_in(
            MARGIN,
            text_width,
            &format!("Codice di verifica: {}", c.ids.verification_code),
            10.0,
            true,
            Align::Left,
        );
        w.paragraph_in(
            MARGIN,
            text_width,
            &format!("Verifichi l'originale inquadrando il codice QR o all'indirizzo {url}"),
            8.5,
            false,
            Align::Left,
        );
        if total > 1 {
            w.paragraph_in(
                MARGIN,
                text_width,
                &format!("Pagina {} di {total}", n + 1),
                8.5,
                false,
                Align::Left,
            );
        }
        if !w.qr(PAGE_WIDTH - MARGIN - qr_side, top, qr_side, &url) {
            return Err(DocumentError::Export(
                "the verification URL is too long for a QR code".into(),
            ));
        }
    }
    doc.finish(fonts)
}

/// A fact a citizen may self-declare (DPR 445/2000 art. 46).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeclaredFact {
    /// Data e luogo di nascita (art. 46 a).
    Nascita,
    /// Residenza (art. 46 b).
    Residenza,
    /// Cittadinanza (art. 46 c).
    Cittadinanza,
    /// Stato civile (art. 46 e).
    StatoCivile,
    /// Stato di famiglia (art. 46 f).
    StatoDiFamiglia,
    /// Esistenza in vita (art. 46 g).
    EsistenzaInVita,
    /// Codice fiscale (art. 46 o).
    CodiceFiscale,
}

impl DeclaredFact {
    /// Every fact offered.
    pub const ALL: [DeclaredFact; 7] = [
        DeclaredFact::Nascita,
        DeclaredFact::Residenza,
        DeclaredFact::Cittadinanza,
        DeclaredFact::StatoCivile,
        DeclaredFact::StatoDiFamiglia,
        DeclaredFact::EsistenzaInVita,
        DeclaredFact::CodiceFiscale,
    ];

    /// The slug (`nascita`, `residenza`, `cittadinanza`, `stato-civile`, `stato-di-famiglia`,
    /// `esistenza-in-vita`, `codice-fiscale`).
    pub fn slug(self) -> &'static str {
        match self {
            DeclaredFact::Nascita => "nascita",
            DeclaredFact::Residenza => "residenza",
            DeclaredFact::Cittadinanza => "cittadinanza",
            DeclaredFact::StatoCivile => "stato-civile",
            DeclaredFact::StatoDiFamiglia => "stato-di-famiglia",
            DeclaredFact::EsistenzaInVita => "esistenza-in-vita",
            DeclaredFact::CodiceFiscale => "codice-fiscale",
        }
    }

    /// The fact with this slug.
    pub fn from_slug(s: &str) -> Option<Self> {
        DeclaredFact::ALL.into_iter().find(|f| f.slug() == s)
    }

    /// The sentences declared, from the record as of `day`.
    pub fn sentences(self, record: &RegistryRecord, day: time::Date) -> Vec<String> {
        let p = &record.person;
        match self {
            DeclaredFact::Nascita => vec![format!(
                "di essere {} a {} il {}",
                nato(p.sex),
                birth_place(p),
                italian(p.birth_date)
            )],
            DeclaredFact::Residenza => {
                vec![format!("di essere residente in {}", residence(record))]
            }
            DeclaredFact::Cittadinanza => {
                vec![format!(
                    "di essere in possesso della cittadinanza {}",
                    citizenship(p.citizenship)
                )]
            }
            DeclaredFact::StatoCivile => {
                vec![format!("di essere di stato civile: {}", p.civil_status)]
            }
            DeclaredFact::StatoDiFamiglia => {
                let mut v = vec!["che la propria famiglia anagrafica è così composta:".to_string()];
                for m in record
                    .members
                    .iter()
                    .filter(|m| m.death_date.is_none_or(|d| d > day))
                {
                    v.push(format!(
                        "• {} {}, {} il {} a {}, codice fiscale {}",
                        m.surname,
                        m.given_name,
                        nato(m.sex),
                        italian(m.birth_date),
                        m.birth_municipality,
                        m.codice_fiscale.as_str()
                    ));
                }
                v
            }
            DeclaredFact::EsistenzaInVita => vec!["di essere in vita".to_string()],
            DeclaredFact::CodiceFiscale => {
                vec![format!(
                    "che il proprio codice fiscale è {}",
                    p.codice_fiscale.as_str()
                )]
            }
        }
    }
}

/// The art. 76 formula of a self-declaration.
pub const ART_76_FORMULA: &str = "consapevole delle sanzioni penali previste dall'art. 76 del D.P.R. 28 dicembre 2000, n. 445, per le ipotesi di falsità in atti e dichiarazioni mendaci,";

/// A self-declaration (dichiarazione sostitutiva di certificazione, DPR 445/2000 art. 46): the
/// facts chosen, from the record; no stamp and no seal. PDF/A-2b.
pub fn self_declaration_pdf(
    record: &RegistryRecord,
    facts: &[DeclaredFact],
    at: OffsetDateTime,
) -> Result<Vec<u8>, DocumentError> {
    let fonts = fonts().ok_or(DocumentError::Font)?;
    let p = &record.person;
    let day = at.date();
    let mut doc = Document::new(
        &format!(
            "Dichiarazione sostitutiva di certificazione — {} {}",
            p.surname, p.given_name
        ),
        &p.full_name(),
        at,
    );
    {
        let mut w = Writer {
            page: doc.page(),
            fonts,
            y: MARGIN - 10.0,
        };
        w.paragraph(
            "DICHIARAZIONE SOSTITUTIVA DI CERTIFICAZIONE",
            14.0,
            true,
            Align::Center,
        );
        w.paragraph(
            "(art. 46 D.P.R. 28 dicembre 2000, n. 445)",
            10.0,
            false,
            Align::Center,
        );
        w.rule();
        w.space(6.0);
        let sottoscritto = match p.sex {
            Sex::M => "Il sottoscritto",
            Sex::F => "La sottoscritta",
        };
        w.paragraph(
            &format!(
                "{sottoscritto} {} {}, codice fiscale {}, {} a {} il {}, {ART_76_FORMULA}",
                p.given_name,
                p.surname,
                p.codice_fiscale.as_str(),
                nato(p.sex),
                birth_place(p),
                italian(p.birth_date)
            ),
            10.5,
            false,
            Align::Left,
        );
        w.space(4.0);
        w.paragraph("DICHIARA", 11.0, true, Align::Center);
        w.space(4.0);
        for f in facts {
            for s in f.sentences(record, day) {
                let line = if s.starts_with('•') {
                    s
                } else {
                    format!("– {s}")
                };
                w.paragraph(&line, 10.5, false, Align::Left);
            }
        }
        w.space(10.0);
        w.paragraph(
            "La presente dichiarazione sostituisce a tutti gli effetti le normali certificazioni (art. 46 D.P.R. 445/2000) e non necessita di autenticazione della firma né di imposta di bollo se presentata con copia di un documento di identità o firmata digitalmente.",
            9.5,
            false,
            Align::Left,
        );
        w.space(12.0);
        w.paragraph(
            &format!("{}, {}", record.municipality.name, italian(day)),
            10.5,
            false,
            Align::Left,
        );
        w.space(16.0);
        w.paragraph(
            &format!(
                "{} dichiarante: {}",
                if p.sex == Sex::F { "La" } else { "Il" },
                p.full_name()
            ),
            10.5,
            false,
            Align::Left,
        );
        w.space(22.0);
        w.paragraph(
            "Firma ______________________________________",
            10.5,
            false,
            Align::Left,
        );
    }
    doc.finish(fonts)
}
