//! Loading a PKCS#11 module, listing its tokens and the certificates on them.

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass};
use cryptoki::slot::Slot;
use tscns_cert::{CnsCertificate, Severity};

use crate::error::Error;

/// The environment variable that names the module to use, before any install path is tried.
pub const MODULE_ENV: &str = "TSCNS_PKCS11_MODULE";

/// Where OpenSC and the regions' vendor modules are usually installed, for this operating system.
///
/// OpenSC drives the TS-CNS through its `itacns` driver; the vendor modules (bit4id's, Athena's) are
/// what some regions ship with their card software.
pub fn candidate_paths() -> Vec<PathBuf> {
    let list: &[&str] = if cfg!(target_os = "windows") {
        &[
            r"C:\Windows\System32\opensc-pkcs11.dll",
            r"C:\Program Files\OpenSC Project\OpenSC\pkcs11\opensc-pkcs11.dll",
            r"C:\Windows\System32\bit4xpki.dll",
            r"C:\Windows\System32\bit4ipki.dll",
            r"C:\Windows\System32\asepkcs.dll",
        ]
    } else if cfg!(target_os = "macos") {
        &[
            "/Library/OpenSC/lib/opensc-pkcs11.so",
            "/opt/homebrew/lib/opensc-pkcs11.so",
            "/usr/local/lib/opensc-pkcs11.so",
            "/usr/local/lib/libbit4xpki.dylib",
            "/Library/bit4id/pkcs11/libbit4xpki.dylib",
            "/usr/local/lib/libASEP11.dylib",
        ]
    } else {
        &[
            "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
            "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
            "/usr/lib64/opensc-pkcs11.so",
            "/usr/lib/opensc-pkcs11.so",
            "/usr/lib/pkcs11/opensc-pkcs11.so",
            "/usr/local/lib/opensc-pkcs11.so",
            "/usr/lib/libbit4xpki.so",
            "/usr/local/lib/libbit4xpki.so",
            "/usr/lib/libbit4ipki.so",
            "/usr/lib/libASEP11.so",
        ]
    };
    list.iter().map(PathBuf::from).collect()
}

/// A token (card) present in a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSummary {
    /// The slot's id in the module.
    pub slot_id: u64,
    /// Token label (for OpenSC and a CNS: e.g. "CNS0" or the card holder's name).
    pub label: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// Whether the module flags the user PIN as blocked. Not reliable: OpenSC sets it for cards
    /// whose PIN state it cannot query (the TS-CNS); the login's answer is what counts.
    pub pin_locked: bool,
    /// Whether the next wrong PIN blocks it.
    pub pin_final_try: bool,
    /// Whether the token is initialised (an empty SoftHSM2 slot is not).
    pub initialized: bool,
}

/// An X.509 certificate on a token.
#[derive(Debug, Clone)]
pub struct CertificateEntry {
    /// The token's slot id.
    pub slot_id: u64,
    /// CKA_LABEL.
    pub label: String,
    /// CKA_ID (links the certificate to its private key).
    pub id: Vec<u8>,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The codice fiscale, when the certificate has the CNS subject form.
    pub codice_fiscale: Option<String>,
    /// Whether it passes the CNS authentication profile (no error findings now).
    pub cns_conformant: bool,
}

/// Which certificate (and so which key) to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySelector {
    /// The certificate whose subject carries this codice fiscale.
    CodiceFiscale(String),
    /// The certificate with this CKA_LABEL.
    Label(String),
    /// The first certificate that passes the CNS authentication profile.
    CnsConformant,
    /// The first certificate that passes the CNS profile, else the first whose subject carries a
    /// codice fiscale (test CAs, cards with profile warnings).
    Cns,
}

impl std::fmt::Display for KeySelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CodiceFiscale(cf) => write!(f, "for codice fiscale {cf}"),
            Self::Label(l) => write!(f, "labelled {l:?}"),
            Self::CnsConformant => f.write_str("conforming to the CNS authentication profile"),
            Self::Cns => f.write_str("with a codice fiscale"),
        }
    }
}

/// A loaded and initialised PKCS#11 module.
#[derive(Debug, Clone)]
pub struct Module {
    pub(crate) pkcs11: Pkcs11,
    pub(crate) path: PathBuf,
}

impl Module {
    /// Loads and initialises the module at `path`.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let load = |reason: String| Error::Load {
            path: path.to_path_buf(),
            reason,
        };
        if !path.exists() {
            return Err(load("no such file".into()));
        }
        let pkcs11 = Pkcs11::new(path).map_err(|e| load(e.to_string()))?;
        match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) => {}
            // Another part of this process initialised it already: fine.
            Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::CryptokiAlreadyInitialized,
                _,
            )) => {}
            Err(e) => return Err(load(e.to_string())),
        }
        Ok(Self {
            pkcs11,
            path: path.to_path_buf(),
        })
    }

    /// Opens the module named by `TSCNS_PKCS11_MODULE`, else the first of [`candidate_paths`] that
    /// exists.
    pub fn discover() -> Result<Self, Error> {
        if let Some(p) = std::env::var_os(MODULE_ENV).filter(|p| !p.is_empty()) {
            return Self::open(Path::new(&p));
        }
        let candidates = candidate_paths();
        for p in &candidates {
            if p.exists() {
                return Self::open(p);
            }
        }
        Err(Error::NoModule {
            looked_in: std::iter::once(format!("${MODULE_ENV}"))
                .chain(candidates.iter().map(|p| p.display().to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// The module's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn slot(&self, slot_id: u64) -> Result<Slot, Error> {
        self.pkcs11
            .get_slots_with_token()
            .map_err(|e| Error::from_cryptoki("listing slots", e))?
            .into_iter()
            .find(|s| s.id() == slot_id)
            .ok_or(Error::TokenRemoved)
    }

    /// The tokens present.
    pub fn tokens(&self) -> Result<Vec<TokenSummary>, Error> {
        let slots = self
            .pkcs11
            .get_slots_with_token()
            .map_err(|e| Error::from_cryptoki("listing slots", e))?;
        let mut out = Vec::new();
        for slot in slots {
            let info = match self.pkcs11.get_token_info(slot) {
                Ok(i) => i,
                // Removed between the two calls, or unreadable: skip it.
                Err(e) => {
                    tracing::debug!(slot = slot.id(), error = %e, "token info failed");
                    continue;
                }
            };
            out.push(TokenSummary {
                slot_id: slot.id(),
                label: info.label().trim().to_string(),
                manufacturer: info.manufacturer_id().trim().to_string(),
                model: info.model().trim().to_string(),
                serial: info.serial_number().trim().to_string(),
                pin_locked: info.user_pin_locked(),
                pin_final_try: info.user_pin_final_try(),
                initialized: info.token_initialized(),
            });
        }
        Ok(out)
    }

    /// The X.509 certificates on the token in `slot_id` (readable without a PIN).
    pub fn certificates(&self, slot_id: u64) -> Result<Vec<CertificateEntry>, Error> {
        let slot = self.slot(slot_id)?;
        let session = self
            .pkcs11
            .open_ro_session(slot)
            .map_err(|e| Error::from_cryptoki("opening a session", e))?;
        let handles = session
            .find_objects(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(CertificateType::X_509),
            ])
            .map_err(|e| Error::from_cryptoki("finding certificates", e))?;
        let mut out = Vec::new();
        for h in handles {
            let attrs = session
                .get_attributes(
                    h,
                    &[
                        AttributeType::Label,
                        AttributeType::Id,
                        AttributeType::Value,
                    ],
                )
                .map_err(|e| Error::from_cryptoki("reading a certificate", e))?;
            let (mut label, mut id, mut der) = (String::new(), Vec::new(), Vec::new());
            for a in attrs {
                match a {
                    Attribute::Label(l) => label = String::from_utf8_lossy(&l).trim().to_string(),
                    Attribute::Id(i) => id = i,
                    Attribute::Value(v) => der = v,
                    _ => {}
                }
            }
            if der.is_empty() {
                continue;
            }
            let (codice_fiscale, cns_conformant) = match CnsCertificate::from_der(&der) {
                Ok(c) => (
                    c.codice_fiscale().ok().map(|cf| cf.to_string()),
                    !c.conformance(tscns_cert::time::OffsetDateTime::now_utc())
                        .iter()
                        .any(|f| f.severity == Severity::Error),
                ),
                Err(_) => (None, false),
            };
            out.push(CertificateEntry {
                slot_id,
                label,
                id,
                der,
                codice_fiscale,
                cns_conformant,
            });
        }
        Ok(out)
    }

    /// Finds the certificate `selector` asks for, on any token.
    pub fn find_certificate(&self, selector: &KeySelector) -> Result<CertificateEntry, Error> {
        self.find_certificate_in(None, selector)
    }

    /// Finds the certificate `selector` asks for, on the token in `slot_id` or on any token.
    pub fn find_certificate_in(
        &self,
        slot_id: Option<u64>,
        selector: &KeySelector,
    ) -> Result<CertificateEntry, Error> {
        if *selector == KeySelector::Cns {
            return match self.find_certificate_in(slot_id, &KeySelector::CnsConformant) {
                Err(Error::NoCertificate { .. }) => self
                    .find_certificate_matching(slot_id, &KeySelector::Cns)
                    .map_err(|e| match e {
                        Error::NoCertificate { module, .. } => Error::NoCertificate {
                            wanted: KeySelector::Cns.to_string(),
                            module,
                        },
                        other => other,
                    }),
                other => other,
            };
        }
        self.find_certificate_matching(slot_id, selector)
    }

    fn find_certificate_matching(
        &self,
        slot_id: Option<u64>,
        selector: &KeySelector,
    ) -> Result<CertificateEntry, Error> {
        let mut tokens = self.tokens()?;
        if let Some(id) = slot_id {
            tokens.retain(|t| t.slot_id == id);
        }
        tokens.retain(|t| t.initialized);
        if tokens.is_empty() {
            return Err(Error::NoToken {
                module: self.path.display().to_string(),
            });
        }
        for t in &tokens {
            for c in self.certificates(t.slot_id)? {
                let hit = match selector {
                    KeySelector::CodiceFiscale(cf) => c
                        .codice_fiscale
                        .as_deref()
                        .is_some_and(|x| x.eq_ignore_ascii_case(cf.trim())),
                    KeySelector::Label(l) => c.label == *l,
                    KeySelector::CnsConformant => c.cns_conformant,
                    KeySelector::Cns => c.codice_fiscale.is_some(),
                };
                if hit {
                    return Ok(c);
                }
            }
        }
        Err(Error::NoCertificate {
            wanted: selector.to_string(),
            module: self.path.display().to_string(),
        })
    }
}
