//! Signing by TLS scheme with the best mechanism the token really lists, and the
//! [`SigningKey`] implementation (feature `tls`; the trait of [`tscns_cert::sign`], re-exported as
//! `tscns_tls::SigningKey`).

use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use tscns_cert::emsa::HashAlg;
use tscns_cert::sign::{SignError, SignatureScheme, SigningKey};
use tscns_tls::padding;

use crate::error::Error;
use crate::key::Pkcs11Key;

/// How a scheme is produced on this token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `CKM_RSA_PKCS_PSS` over the host-computed hash.
    Pss,
    /// `CKM_SHAxxx_RSA_PKCS_PSS` over the message.
    HashingPss,
    /// `CKM_RSA_PKCS` over the host-built DigestInfo.
    Pkcs1DigestInfo,
    /// `CKM_SHAxxx_RSA_PKCS` over the message.
    HashingPkcs1,
    /// `CKM_RSA_X_509` (raw RSA) over a host-built EMSA block.
    Raw,
}

/// The PKCS#11 hash mechanism and MGF1 of a scheme's hash (the schemes use SHA-256/384/512 only).
fn hash_mech(s: SignatureScheme) -> (MechanismType, PkcsMgfType) {
    match s {
        SignatureScheme::Pkcs1Sha256 | SignatureScheme::PssSha256 => {
            (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256)
        }
        SignatureScheme::Pkcs1Sha384 | SignatureScheme::PssSha384 => {
            (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384)
        }
        SignatureScheme::Pkcs1Sha512 | SignatureScheme::PssSha512 => {
            (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512)
        }
    }
}

fn pss_params(s: SignatureScheme) -> PkcsPssParams {
    let h: HashAlg = s.hash();
    let (hash_alg, mgf) = hash_mech(s);
    PkcsPssParams {
        hash_alg,
        mgf,
        // TLS 1.3 (RFC 8446 §4.2.3): salt length = digest length.
        s_len: (h.output_len() as u64).into(),
    }
}

impl Pkcs11Key {
    /// The best route for `scheme` among the mechanisms the token lists, if any.
    pub fn route(&self, scheme: SignatureScheme) -> Option<Route> {
        if !scheme.fits_key(self.key_bits) {
            return None;
        }
        let candidates: &[(MechanismType, Route)] = if scheme.is_pss() {
            &[
                (MechanismType::RSA_PKCS_PSS, Route::Pss),
                (
                    match scheme {
                        SignatureScheme::PssSha384 => MechanismType::SHA384_RSA_PKCS_PSS,
                        SignatureScheme::PssSha512 => MechanismType::SHA512_RSA_PKCS_PSS,
                        _ => MechanismType::SHA256_RSA_PKCS_PSS,
                    },
                    Route::HashingPss,
                ),
                (MechanismType::RSA_X_509, Route::Raw),
            ]
        } else {
            &[
                (MechanismType::RSA_PKCS, Route::Pkcs1DigestInfo),
                (
                    match scheme {
                        SignatureScheme::Pkcs1Sha384 => MechanismType::SHA384_RSA_PKCS,
                        SignatureScheme::Pkcs1Sha512 => MechanismType::SHA512_RSA_PKCS,
                        _ => MechanismType::SHA256_RSA_PKCS,
                    },
                    Route::HashingPkcs1,
                ),
                (MechanismType::RSA_X_509, Route::Raw),
            ]
        };
        candidates
            .iter()
            .find(|(m, _)| self.has_mechanism(*m))
            .map(|(_, r)| *r)
    }

    /// Checks, with one signature over a fixed test message, whether the token really produces
    /// RSA-PSS through the mechanisms it lists (OpenSC lists PSS and raw RSA for the TS-CNS even
    /// when its driver refuses them), and if not, PKCS#1 v1.5. Refused mechanisms are dropped, so
    /// [`schemes`](Self::schemes) — and the TLS version chosen from it — tells the truth before any
    /// handshake; a token that refuses everything gives [`Error::NoWorkingMechanism`]. Called by
    /// [`login`](Pkcs11Key::login).
    pub fn probe_pss(&self) -> Result<(), Error> {
        const PROBE: &[u8] = b"tscns: signature capability probe";
        if self.route(SignatureScheme::PssSha256).is_some() {
            match self.sign_scheme(SignatureScheme::PssSha256, PROBE) {
                Ok(_) => return Ok(()),
                Err(Error::MechanismRefused { .. } | Error::Unsupported { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        // No PSS: make sure PKCS#1 v1.5 really works, so a token that refuses everything is
        // reported at login rather than as a failed handshake.
        match self.sign_scheme(SignatureScheme::Pkcs1Sha256, PROBE) {
            Ok(_) => Ok(()),
            Err(Error::MechanismRefused { .. } | Error::Unsupported { .. }) => {
                Err(Error::NoWorkingMechanism {
                    mechanisms: self
                        .mechanisms
                        .iter()
                        .map(|m| m.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The TLS schemes this token can really produce with this key.
    pub fn schemes(&self) -> Vec<SignatureScheme> {
        SignatureScheme::ALL
            .into_iter()
            .filter(|s| self.route(*s).is_some())
            .collect()
    }

    /// Signs the unhashed `message` with `scheme`, through the best mechanism the token lists.
    ///
    /// A mechanism the token lists but refuses is remembered and the next route is tried (at most
    /// three: one per mechanism family), so OpenSC advertising PSS for a raw-RSA card still works.
    pub fn sign_scheme(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, Error> {
        let mut last = None;
        for _ in 0..3 {
            match self.sign_scheme_once(scheme, message) {
                Err(e @ Error::MechanismRefused { .. }) => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or(Error::Unsupported {
            what: scheme.to_string(),
            mechanisms: String::new(),
        }))
    }

    fn sign_scheme_once(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, Error> {
        let route = self.route(scheme).ok_or_else(|| Error::Unsupported {
            what: scheme.to_string(),
            mechanisms: self
                .mechanisms
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        let h = scheme.hash();
        match route {
            Route::Pss => {
                let digest = h.digest(message);
                self.sign_with_mechanism(&Mechanism::RsaPkcsPss(pss_params(scheme)), &digest)
            }
            Route::HashingPss => {
                let m = match scheme {
                    SignatureScheme::PssSha384 => Mechanism::Sha384RsaPkcsPss(pss_params(scheme)),
                    SignatureScheme::PssSha512 => Mechanism::Sha512RsaPkcsPss(pss_params(scheme)),
                    _ => Mechanism::Sha256RsaPkcsPss(pss_params(scheme)),
                };
                self.sign_with_mechanism(&m, message)
            }
            Route::Pkcs1DigestInfo => {
                let di = padding::digest_info(h, &h.digest(message))?;
                self.sign_with_mechanism(&Mechanism::RsaPkcs, &di)
            }
            Route::HashingPkcs1 => {
                let m = match scheme {
                    SignatureScheme::Pkcs1Sha384 => Mechanism::Sha384RsaPkcs,
                    SignatureScheme::Pkcs1Sha512 => Mechanism::Sha512RsaPkcs,
                    _ => Mechanism::Sha256RsaPkcs,
                };
                self.sign_with_mechanism(&m, message)
            }
            Route::Raw => {
                let block = padding::block_for_message(scheme, message, self.key_bits)?;
                self.sign_with_mechanism(&Mechanism::RsaX509, &block)
            }
        }
    }
}

impl SigningKey for Pkcs11Key {
    fn certificate_chain(&self) -> Vec<Vec<u8>> {
        vec![self.certificate.der.clone()]
    }

    fn key_bits(&self) -> usize {
        self.key_bits
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        Pkcs11Key::schemes(self)
    }

    fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.sign_scheme(scheme, message)
            .map_err(|e| Box::new(e) as SignError)
    }
}
