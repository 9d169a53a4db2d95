//! The raw function list, called the way careless or hostile programs call it: NULL pointers,
//! zero lengths and short buffers on every function, bad handles, the card pulled out between
//! `C_SignInit` and `C_Sign`, two threads signing on two sessions, `C_Finalize` with sessions
//! open. The module must answer the code the standard names and never crash. Through pcscd +
//! vpcd with a tscns-sim card; feature `system-tests`.
//!
//! Calling a C function table needs `unsafe`: this harness is the C caller.
#![cfg(feature = "system-tests")]
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ptr::{null, null_mut};

use common::{Plugged, READER};
use cryptoki_sys::*;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::{Digest, Sha256};

type F = &'static CK_FUNCTION_LIST;

/// Calls one function of the table.
macro_rules! call {
    ($f:expr, $name:ident $(, $arg:expr)*) => {
        // SAFETY: the module's own function table; the arguments are what the test means to
        // pass (NULL pointers included: the module must refuse them).
        unsafe { ($f.$name.expect(stringify!($name)))($($arg),*) }
    };
}

fn functions() -> F {
    let mut list: *mut CK_FUNCTION_LIST = null_mut();
    // SAFETY: a valid out-pointer.
    assert_eq!(
        unsafe { tscns_pkcs11_module::C_GetFunctionList(&mut list) },
        CKR_OK
    );
    // SAFETY: NULL is refused, never written.
    assert_eq!(
        unsafe { tscns_pkcs11_module::C_GetFunctionList(null_mut()) },
        CKR_ARGUMENTS_BAD
    );
    // SAFETY: the table is a static of the module.
    unsafe { &*list }
}

fn slot_of_reader(f: F) -> CK_SLOT_ID {
    let mut n: CK_ULONG = 0;
    assert_eq!(call!(f, C_GetSlotList, CK_TRUE, null_mut(), &mut n), CKR_OK);
    assert!(n >= 1, "no slot with a token");
    let mut slots = vec![0; n as usize];
    assert_eq!(
        call!(f, C_GetSlotList, CK_TRUE, slots.as_mut_ptr(), &mut n),
        CKR_OK
    );
    for s in slots {
        let mut info = CK_SLOT_INFO::default();
        assert_eq!(call!(f, C_GetSlotInfo, s, &mut info), CKR_OK);
        if String::from_utf8_lossy(&info.slotDescription).trim_end() == READER {
            assert_ne!(info.flags & CKF_TOKEN_PRESENT, 0);
            return s;
        }
    }
    panic!("no slot for {READER}");
}

fn open(f: F, slot: CK_SLOT_ID) -> CK_SESSION_HANDLE {
    let mut h = 0;
    assert_eq!(
        call!(
            f,
            C_OpenSession,
            slot,
            CKF_SERIAL_SESSION,
            null_mut(),
            None,
            &mut h
        ),
        CKR_OK
    );
    h
}

fn login(f: F, h: CK_SESSION_HANDLE, pin: &str) -> CK_RV {
    let mut p = pin.as_bytes().to_vec();
    call!(f, C_Login, h, CKU_USER, p.as_mut_ptr(), p.len() as CK_ULONG)
}

fn find_one(f: F, h: CK_SESSION_HANDLE, class: CK_OBJECT_CLASS) -> CK_OBJECT_HANDLE {
    let mut class = class;
    let mut t = [CK_ATTRIBUTE {
        type_: CKA_CLASS,
        pValue: std::ptr::addr_of_mut!(class).cast(),
        ulValueLen: std::mem::size_of::<CK_OBJECT_CLASS>() as CK_ULONG,
    }];
    assert_eq!(call!(f, C_FindObjectsInit, h, t.as_mut_ptr(), 1), CKR_OK);
    let mut o = [0; 4];
    let mut n = 0;
    assert_eq!(
        call!(f, C_FindObjects, h, o.as_mut_ptr(), 4, &mut n),
        CKR_OK
    );
    assert_eq!(call!(f, C_FindObjectsFinal, h), CKR_OK);
    assert_eq!(n, 1, "one object of class {class}");
    o[0]
}

fn sign(
    f: F,
    h: CK_SESSION_HANDLE,
    key: CK_OBJECT_HANDLE,
    mech: CK_MECHANISM_TYPE,
    data: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    let mut params = CK_RSA_PKCS_PSS_PARAMS {
        hashAlg: CKM_SHA256,
        mgf: CKG_MGF1_SHA256,
        sLen: 32,
    };
    let mut m = CK_MECHANISM {
        mechanism: mech,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    if mech == CKM_SHA256_RSA_PKCS_PSS {
        m.pParameter = std::ptr::addr_of_mut!(params).cast();
        m.ulParameterLen = std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>() as CK_ULONG;
    }
    let rv = call!(f, C_SignInit, h, &mut m, key);
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut d = data.to_vec();
    let mut sig = vec![0u8; 512];
    let mut len = sig.len() as CK_ULONG;
    let rv = call!(
        f,
        C_Sign,
        h,
        d.as_mut_ptr(),
        d.len() as CK_ULONG,
        sig.as_mut_ptr(),
        &mut len
    );
    if rv != CKR_OK {
        return Err(rv);
    }
    sig.truncate(len as usize);
    Ok(sig)
}

fn cert_key(f: F, h: CK_SESSION_HANDLE) -> RsaPublicKey {
    let cert = find_one(f, h, CKO_CERTIFICATE);
    let mut a = [CK_ATTRIBUTE {
        type_: CKA_VALUE,
        pValue: null_mut(),
        ulValueLen: 0,
    }];
    assert_eq!(
        call!(f, C_GetAttributeValue, h, cert, a.as_mut_ptr(), 1),
        CKR_OK
    );
    let mut der = vec![0u8; a[0].ulValueLen as usize];
    a[0].pValue = der.as_mut_ptr().cast();
    assert_eq!(
        call!(f, C_GetAttributeValue, h, cert, a.as_mut_ptr(), 1),
        CKR_OK
    );
    let c = tscns_cert::CnsCertificate::from_der(&der).unwrap();
    let spki =
        x509_cert::der::Encode::to_der(&c.x509().tbs_certificate.subject_public_key_info).unwrap();
    RsaPublicKey::from_public_key_der(&spki).unwrap()
}

/// Every function refuses NULL pointers where it needs memory, and handles bad handles.
fn null_pointers_and_short_buffers(f: F, slot: CK_SLOT_ID, pin: &str) {
    let bad_slot = 999;
    let bad_h = 0xDEAD;
    let mut n: CK_ULONG;
    assert_eq!(call!(f, C_GetInfo, null_mut()), CKR_ARGUMENTS_BAD);
    assert_eq!(
        call!(f, C_GetSlotList, CK_TRUE, null_mut(), null_mut()),
        CKR_ARGUMENTS_BAD
    );
    // A buffer for 0 slots is too short, and the count says how many.
    let mut one = [0; 1];
    n = 0;
    assert_eq!(
        call!(f, C_GetSlotList, CK_TRUE, one.as_mut_ptr(), &mut n),
        CKR_BUFFER_TOO_SMALL
    );
    assert!(n >= 1);
    assert_eq!(call!(f, C_GetSlotInfo, slot, null_mut()), CKR_ARGUMENTS_BAD);
    let mut si = CK_SLOT_INFO::default();
    assert_eq!(
        call!(f, C_GetSlotInfo, bad_slot, &mut si),
        CKR_SLOT_ID_INVALID
    );
    assert_eq!(
        call!(f, C_GetTokenInfo, slot, null_mut()),
        CKR_ARGUMENTS_BAD
    );
    let mut ti = CK_TOKEN_INFO::default();
    assert_eq!(
        call!(f, C_GetTokenInfo, bad_slot, &mut ti),
        CKR_SLOT_ID_INVALID
    );
    assert_eq!(
        call!(f, C_GetMechanismList, slot, null_mut(), null_mut()),
        CKR_ARGUMENTS_BAD
    );
    n = 1;
    let mut mechs = [0; 1];
    assert_eq!(
        call!(f, C_GetMechanismList, slot, mechs.as_mut_ptr(), &mut n),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(n, 9);
    assert_eq!(
        call!(f, C_GetMechanismInfo, slot, CKM_RSA_PKCS, null_mut()),
        CKR_ARGUMENTS_BAD
    );
    let mut mi = CK_MECHANISM_INFO::default();
    assert_eq!(
        call!(
            f,
            C_GetMechanismInfo,
            slot,
            CKM_SHA256_RSA_PKCS_PSS,
            &mut mi
        ),
        CKR_OK
    );
    assert_eq!(mi.flags, CKF_HW | CKF_SIGN);
    assert_eq!(
        call!(f, C_GetMechanismInfo, slot, CKM_AES_CBC, &mut mi),
        CKR_MECHANISM_INVALID
    );
    assert_eq!(
        call!(f, C_InitToken, slot, null_mut(), 0, null_mut()),
        CKR_FUNCTION_NOT_SUPPORTED
    );
    assert_eq!(
        call!(
            f,
            C_OpenSession,
            slot,
            CKF_SERIAL_SESSION,
            null_mut(),
            None,
            null_mut()
        ),
        CKR_ARGUMENTS_BAD
    );
    let mut h = 0;
    assert_eq!(
        call!(f, C_OpenSession, slot, 0, null_mut(), None, &mut h),
        CKR_SESSION_PARALLEL_NOT_SUPPORTED
    );
    assert_eq!(
        call!(
            f,
            C_OpenSession,
            bad_slot,
            CKF_SERIAL_SESSION,
            null_mut(),
            None,
            &mut h
        ),
        CKR_SLOT_ID_INVALID
    );

    // Every session function with a handle that does not exist.
    let mut buf = [0u8; 16];
    let mut len: CK_ULONG = 16;
    let mut a = CK_ATTRIBUTE::default();
    let mut o = 0;
    assert_eq!(call!(f, C_CloseSession, bad_h), CKR_SESSION_HANDLE_INVALID);
    assert_eq!(
        call!(f, C_GetSessionInfo, bad_h, null_mut()),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        call!(f, C_Login, bad_h, CKU_USER, null_mut(), 0),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(call!(f, C_Logout, bad_h), CKR_SESSION_HANDLE_INVALID);
    assert_eq!(
        call!(f, C_InitPIN, bad_h, null_mut(), 0),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        call!(f, C_SetPIN, bad_h, null_mut(), 0, null_mut(), 0),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        call!(f, C_GetAttributeValue, bad_h, 1, &mut a, 1),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        call!(f, C_GetObjectSize, bad_h, 1, &mut len),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        call!(f, C_FindObjectsInit, bad_h, null_mut(), 0),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        call!(f, C_FindObjects, bad_h, &mut o, 1, &mut len),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        call!(f, C_FindObjectsFinal, bad_h),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        call!(f, C_SignInit, bad_h, null_mut(), 3),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        call!(f, C_Sign, bad_h, null_mut(), 0, null_mut(), null_mut()),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        call!(f, C_SignUpdate, bad_h, null_mut(), 0),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        call!(f, C_SignFinal, bad_h, null_mut(), null_mut()),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        call!(f, C_GenerateRandom, bad_h, buf.as_mut_ptr(), 16),
        CKR_SESSION_HANDLE_INVALID
    );

    let h = open(f, slot);
    assert_eq!(call!(f, C_GetSessionInfo, h, null_mut()), CKR_ARGUMENTS_BAD);
    let mut sinfo = CK_SESSION_INFO::default();
    assert_eq!(call!(f, C_GetSessionInfo, h, &mut sinfo), CKR_OK);
    assert_eq!(sinfo.state, CKS_RO_PUBLIC_SESSION);
    // PINs: NULL with a length, NULL without one (no pinentry), bad shapes: nothing is sent.
    let tries = 3;
    assert_eq!(
        call!(f, C_Login, h, CKU_USER, null_mut(), 5),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(f, C_Login, h, CKU_USER, null_mut(), 0),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(login(f, h, "12"), CKR_PIN_LEN_RANGE);
    assert_eq!(login(f, h, "12a45"), CKR_PIN_INVALID);
    assert_eq!(
        call!(f, C_Login, h, 77, null_mut(), 0),
        CKR_USER_TYPE_INVALID
    );
    assert_eq!(call!(f, C_Logout, h), CKR_USER_NOT_LOGGED_IN);
    assert_eq!(
        call!(f, C_SetPIN, h, null_mut(), 0, null_mut(), 0),
        CKR_SESSION_READ_ONLY
    );
    assert_eq!(call!(f, C_InitPIN, h, null_mut(), 0), CKR_SESSION_READ_ONLY);
    let _ = tries;

    // Objects before login: the private key is invisible.
    let mut class = CKO_PRIVATE_KEY;
    let mut t = [CK_ATTRIBUTE {
        type_: CKA_CLASS,
        pValue: std::ptr::addr_of_mut!(class).cast(),
        ulValueLen: std::mem::size_of::<CK_OBJECT_CLASS>() as CK_ULONG,
    }];
    assert_eq!(
        call!(f, C_FindObjectsInit, h, null_mut(), 1),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(f, C_FindObjects, h, &mut o, 1, &mut len),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(call!(f, C_FindObjectsInit, h, t.as_mut_ptr(), 1), CKR_OK);
    assert_eq!(
        call!(f, C_FindObjectsInit, h, t.as_mut_ptr(), 1),
        CKR_OPERATION_ACTIVE
    );
    assert_eq!(
        call!(f, C_FindObjects, h, &mut o, 1, null_mut()),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(f, C_FindObjects, h, null_mut(), 1, &mut len),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(call!(f, C_FindObjects, h, &mut o, 1, &mut len), CKR_OK);
    assert_eq!(len, 0, "no private key before login");
    assert_eq!(call!(f, C_FindObjectsFinal, h), CKR_OK);
    assert_eq!(
        call!(f, C_FindObjectsFinal, h),
        CKR_OPERATION_NOT_INITIALIZED
    );

    // C_GetAttributeValue exactly per PKCS#11 2.40 §5.7.
    let cert = find_one(f, h, CKO_CERTIFICATE);
    assert_eq!(
        call!(f, C_GetAttributeValue, h, cert, null_mut(), 2),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(f, C_GetAttributeValue, h, 77, &mut a, 1),
        CKR_OBJECT_HANDLE_INVALID
    );
    let mut small = [0u8; 4];
    let mut class_out: CK_OBJECT_CLASS = 0;
    let mut tmpl = [
        CK_ATTRIBUTE {
            type_: CKA_VALUE,
            pValue: null_mut(),
            ulValueLen: 0,
        },
        CK_ATTRIBUTE {
            type_: CKA_MODULUS,
            pValue: small.as_mut_ptr().cast(),
            ulValueLen: 4,
        },
        CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: std::ptr::addr_of_mut!(class_out).cast(),
            ulValueLen: std::mem::size_of::<CK_OBJECT_CLASS>() as CK_ULONG,
        },
        CK_ATTRIBUTE {
            type_: CKA_SUBJECT,
            pValue: small.as_mut_ptr().cast(),
            ulValueLen: 4,
        },
    ];
    assert_eq!(
        call!(f, C_GetAttributeValue, h, cert, tmpl.as_mut_ptr(), 3),
        CKR_ATTRIBUTE_TYPE_INVALID
    );
    assert!(tmpl[0].ulValueLen > 500, "size query of the certificate");
    assert_eq!(
        tmpl[1].ulValueLen,
        CK_ULONG::MAX,
        "CK_UNAVAILABLE_INFORMATION"
    );
    assert_eq!(
        class_out, CKO_CERTIFICATE,
        "the valid attribute is still filled"
    );
    assert_eq!(
        call!(f, C_GetAttributeValue, h, cert, tmpl[3..].as_mut_ptr(), 1),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(tmpl[3].ulValueLen, CK_ULONG::MAX);
    assert_eq!(
        call!(f, C_GetObjectSize, h, cert, null_mut()),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(call!(f, C_GetObjectSize, h, cert, &mut len), CKR_OK);
    assert_eq!(len, tmpl[0].ulValueLen);

    // Signing before login: the key is not there.
    let mut m = CK_MECHANISM {
        mechanism: CKM_SHA256_RSA_PKCS,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    assert_eq!(call!(f, C_SignInit, h, &mut m, 3), CKR_KEY_HANDLE_INVALID);
    assert_eq!(login(f, h, pin), CKR_OK);
    assert_eq!(login(f, h, pin), CKR_USER_ALREADY_LOGGED_IN);
    let key = find_one(f, h, CKO_PRIVATE_KEY);
    // The private key: sensitive attributes refused, public ones there.
    let mut t = [CK_ATTRIBUTE {
        type_: CKA_PRIVATE_EXPONENT,
        pValue: null_mut(),
        ulValueLen: 0,
    }];
    assert_eq!(
        call!(f, C_GetAttributeValue, h, key, t.as_mut_ptr(), 1),
        CKR_ATTRIBUTE_SENSITIVE
    );
    assert_eq!(t[0].ulValueLen, CK_ULONG::MAX);
    let pubkey = find_one(f, h, CKO_PUBLIC_KEY);
    assert_eq!(
        call!(f, C_SignInit, h, &mut m, pubkey),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    assert_eq!(call!(f, C_SignInit, h, null_mut(), key), CKR_ARGUMENTS_BAD);
    let mut bad = CK_MECHANISM {
        mechanism: CKM_RSA_PKCS_PSS,
        pParameter: null_mut(),
        ulParameterLen: 24,
    };
    assert_eq!(call!(f, C_SignInit, h, &mut bad, key), CKR_ARGUMENTS_BAD);
    bad.ulParameterLen = 0;
    assert_eq!(
        call!(f, C_SignInit, h, &mut bad, key),
        CKR_MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        call!(f, C_Sign, h, null_mut(), 0, null_mut(), &mut len),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(call!(f, C_SignInit, h, &mut m, key), CKR_OK);
    assert_eq!(call!(f, C_SignInit, h, &mut m, key), CKR_OPERATION_ACTIVE);
    let mut data = *b"robust";
    // Size query, short buffer: the operation stays active.
    assert_eq!(
        call!(f, C_Sign, h, data.as_mut_ptr(), 6, null_mut(), &mut len),
        CKR_OK
    );
    let k = len;
    assert!(k == 128 || k == 256);
    let mut sig = vec![0u8; k as usize];
    len = 10;
    assert_eq!(
        call!(
            f,
            C_Sign,
            h,
            data.as_mut_ptr(),
            6,
            sig.as_mut_ptr(),
            &mut len
        ),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(len, k);
    assert_eq!(
        call!(
            f,
            C_Sign,
            h,
            data.as_mut_ptr(),
            6,
            sig.as_mut_ptr(),
            &mut len
        ),
        CKR_OK
    );
    let pk = cert_key(f, h);
    pk.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(data), &sig)
        .unwrap();
    // Data pointer NULL with a length ends the operation with CKR_ARGUMENTS_BAD.
    assert_eq!(call!(f, C_SignInit, h, &mut m, key), CKR_OK);
    assert_eq!(
        call!(f, C_Sign, h, null_mut(), 6, sig.as_mut_ptr(), &mut len),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(f, C_SignFinal, h, sig.as_mut_ptr(), &mut len),
        CKR_OPERATION_NOT_INITIALIZED
    );
    // Multi-part, zero-length parts included.
    assert_eq!(call!(f, C_SignInit, h, &mut m, key), CKR_OK);
    assert_eq!(call!(f, C_SignUpdate, h, null_mut(), 0), CKR_OK);
    assert_eq!(call!(f, C_SignUpdate, h, data.as_mut_ptr(), 3), CKR_OK);
    assert_eq!(call!(f, C_SignUpdate, h, data[3..].as_mut_ptr(), 3), CKR_OK);
    assert_eq!(
        call!(f, C_SignFinal, h, sig.as_mut_ptr(), null_mut()),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(call!(f, C_SignInit, h, &mut m, key), CKR_OK);
    assert_eq!(call!(f, C_SignUpdate, h, data.as_mut_ptr(), 6), CKR_OK);
    len = k;
    assert_eq!(call!(f, C_SignFinal, h, sig.as_mut_ptr(), &mut len), CKR_OK);
    pk.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(data), &sig)
        .unwrap();
    assert_eq!(
        call!(f, C_GenerateRandom, h, null_mut(), 16),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(call!(f, C_GenerateRandom, h, buf.as_mut_ptr(), 16), CKR_OK);
    assert_eq!(
        call!(f, C_SeedRandom, h, null_mut(), 0),
        CKR_RANDOM_SEED_NOT_SUPPORTED
    );

    // Everything the token does not offer, with NULL everywhere.
    let ns = CKR_FUNCTION_NOT_SUPPORTED;
    assert_eq!(call!(f, C_GetOperationState, h, null_mut(), null_mut()), ns);
    assert_eq!(call!(f, C_SetOperationState, h, null_mut(), 0, 0, 0), ns);
    assert_eq!(call!(f, C_CreateObject, h, null_mut(), 0, null_mut()), ns);
    assert_eq!(call!(f, C_CopyObject, h, 1, null_mut(), 0, null_mut()), ns);
    assert_eq!(call!(f, C_DestroyObject, h, 1), ns);
    assert_eq!(call!(f, C_SetAttributeValue, h, 1, null_mut(), 0), ns);
    assert_eq!(call!(f, C_EncryptInit, h, null_mut(), 0), ns);
    assert_eq!(
        call!(f, C_Encrypt, h, null_mut(), 0, null_mut(), null_mut()),
        ns
    );
    assert_eq!(
        call!(f, C_EncryptUpdate, h, null_mut(), 0, null_mut(), null_mut()),
        ns
    );
    assert_eq!(call!(f, C_EncryptFinal, h, null_mut(), null_mut()), ns);
    assert_eq!(call!(f, C_DecryptInit, h, null_mut(), 0), ns);
    assert_eq!(
        call!(f, C_Decrypt, h, null_mut(), 0, null_mut(), null_mut()),
        ns
    );
    assert_eq!(
        call!(f, C_DecryptUpdate, h, null_mut(), 0, null_mut(), null_mut()),
        ns
    );
    assert_eq!(call!(f, C_DecryptFinal, h, null_mut(), null_mut()), ns);
    assert_eq!(call!(f, C_DigestInit, h, null_mut()), ns);
    assert_eq!(
        call!(f, C_Digest, h, null_mut(), 0, null_mut(), null_mut()),
        ns
    );
    assert_eq!(call!(f, C_DigestUpdate, h, null_mut(), 0), ns);
    assert_eq!(call!(f, C_DigestKey, h, 0), ns);
    assert_eq!(call!(f, C_DigestFinal, h, null_mut(), null_mut()), ns);
    assert_eq!(call!(f, C_SignRecoverInit, h, null_mut(), 0), ns);
    assert_eq!(
        call!(f, C_SignRecover, h, null_mut(), 0, null_mut(), null_mut()),
        ns
    );
    assert_eq!(call!(f, C_VerifyInit, h, null_mut(), 0), ns);
    assert_eq!(call!(f, C_Verify, h, null_mut(), 0, null_mut(), 0), ns);
    assert_eq!(call!(f, C_VerifyUpdate, h, null_mut(), 0), ns);
    assert_eq!(call!(f, C_VerifyFinal, h, null_mut(), 0), ns);
    assert_eq!(call!(f, C_VerifyRecoverInit, h, null_mut(), 0), ns);
    assert_eq!(
        call!(f, C_VerifyRecover, h, null_mut(), 0, null_mut(), null_mut()),
        ns
    );
    assert_eq!(
        call!(
            f,
            C_DigestEncryptUpdate,
            h,
            null_mut(),
            0,
            null_mut(),
            null_mut()
        ),
        ns
    );
    assert_eq!(
        call!(
            f,
            C_DecryptDigestUpdate,
            h,
            null_mut(),
            0,
            null_mut(),
            null_mut()
        ),
        ns
    );
    assert_eq!(
        call!(
            f,
            C_SignEncryptUpdate,
            h,
            null_mut(),
            0,
            null_mut(),
            null_mut()
        ),
        ns
    );
    assert_eq!(
        call!(
            f,
            C_DecryptVerifyUpdate,
            h,
            null_mut(),
            0,
            null_mut(),
            null_mut()
        ),
        ns
    );
    assert_eq!(
        call!(f, C_GenerateKey, h, null_mut(), null_mut(), 0, null_mut()),
        ns
    );
    assert_eq!(
        call!(
            f,
            C_GenerateKeyPair,
            h,
            null_mut(),
            null_mut(),
            0,
            null_mut(),
            0,
            null_mut(),
            null_mut()
        ),
        ns
    );
    assert_eq!(
        call!(f, C_WrapKey, h, null_mut(), 0, 0, null_mut(), null_mut()),
        ns
    );
    assert_eq!(
        call!(
            f,
            C_UnwrapKey,
            h,
            null_mut(),
            0,
            null_mut(),
            0,
            null_mut(),
            0,
            null_mut()
        ),
        ns
    );
    assert_eq!(
        call!(f, C_DeriveKey, h, null_mut(), 0, null_mut(), 0, null_mut()),
        ns
    );
    assert_eq!(call!(f, C_WaitForSlotEvent, 0, null_mut(), null_mut()), ns);
    assert_eq!(call!(f, C_GetFunctionStatus, h), CKR_FUNCTION_NOT_PARALLEL);
    assert_eq!(call!(f, C_CancelFunction, h), CKR_FUNCTION_NOT_PARALLEL);
    assert_eq!(call!(f, C_Logout, h), CKR_OK);
    assert_eq!(call!(f, C_CloseSession, h), CKR_OK);
    let _ = null::<u8>();
}

#[test]
fn the_raw_function_list_never_crashes() {
    let log = std::env::temp_dir().join(format!("tscns-p11m-robust-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    std::env::set_var("TSCNS_PKCS11_READER", READER);
    std::env::set_var("TSCNS_PKCS11_LOG", &log);
    std::env::remove_var("TSCNS_PKCS11_PINENTRY");
    let f = functions();

    // Before C_Initialize.
    let mut n = 0;
    assert_eq!(
        call!(f, C_GetSlotList, CK_TRUE, null_mut(), &mut n),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    assert_eq!(
        call!(f, C_Finalize, null_mut()),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    assert_eq!(
        call!(f, C_Sign, 1, null_mut(), 0, null_mut(), null_mut()),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    // C_Initialize's arguments (PKCS#11 2.40 §5.4).
    let mut args = CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags: CKF_OS_LOCKING_OK,
        pReserved: std::ptr::dangling_mut(),
    };
    let init = |a: &mut CK_C_INITIALIZE_ARGS| {
        call!(f, C_Initialize, (a as *mut CK_C_INITIALIZE_ARGS).cast())
    };
    assert_eq!(init(&mut args), CKR_ARGUMENTS_BAD);
    args.pReserved = null_mut();
    unsafe extern "C" fn create(_: *mut *mut std::ffi::c_void) -> CK_RV {
        CKR_OK
    }
    args.CreateMutex = Some(create);
    assert_eq!(
        init(&mut args),
        CKR_ARGUMENTS_BAD,
        "some mutex functions only"
    );
    args.CreateMutex = None;
    assert_eq!(init(&mut args), CKR_OK);
    assert_eq!(
        call!(f, C_Initialize, null_mut()),
        CKR_CRYPTOKI_ALREADY_INITIALIZED
    );
    assert_eq!(
        call!(f, C_Finalize, std::ptr::dangling_mut()),
        CKR_ARGUMENTS_BAD
    );

    let card = Plugged::new("athena-1024");
    let pin = card.profile.pin.expose().to_owned();
    let h = card.handle.clone();
    let slot = slot_of_reader(f);
    null_pointers_and_short_buffers(f, slot, &pin);
    assert!(!h.pin_verified(), "logout resets the card");

    // Two threads, two sessions, one login.
    let s1 = open(f, slot);
    let s2 = open(f, slot);
    assert_eq!(login(f, s1, &pin), CKR_OK);
    let key = find_one(f, s1, CKO_PRIVATE_KEY);
    let pk = cert_key(f, s1);
    let threads: Vec<_> = [(s1, CKM_SHA256_RSA_PKCS), (s2, CKM_SHA256_RSA_PKCS_PSS)]
        .into_iter()
        .map(|(s, mech)| {
            std::thread::spawn(move || {
                (0..4)
                    .map(|i| {
                        let msg = format!("thread {s} message {i}");
                        (
                            msg.clone(),
                            mech,
                            sign(f, s, key, mech, msg.as_bytes()).unwrap(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        for (msg, mech, sig) in t.join().unwrap() {
            let d = Sha256::digest(msg.as_bytes());
            if mech == CKM_SHA256_RSA_PKCS {
                pk.verify(Pkcs1v15Sign::new::<Sha256>(), &d, &sig).unwrap();
            } else {
                pk.verify(Pss::new_with_salt::<Sha256>(32), &d, &sig)
                    .unwrap();
            }
        }
    }

    // C_Finalize with both sessions open: the card forgets the PIN, the handles die.
    assert!(h.pin_verified());
    assert_eq!(call!(f, C_Finalize, null_mut()), CKR_OK);
    assert!(
        !h.pin_verified(),
        "C_Finalize resets a card whose PIN was verified"
    );
    let mut si = CK_SESSION_INFO::default();
    assert_eq!(
        call!(f, C_GetSessionInfo, s1, &mut si),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );

    // The card pulled out between C_SignInit and C_Sign.
    assert_eq!(call!(f, C_Initialize, null_mut()), CKR_OK);
    let slot = slot_of_reader(f);
    let s = open(f, slot);
    assert_eq!(login(f, s, &pin), CKR_OK);
    let key = find_one(f, s, CKO_PRIVATE_KEY);
    let mut m = CK_MECHANISM {
        mechanism: CKM_SHA256_RSA_PKCS,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    assert_eq!(call!(f, C_SignInit, s, &mut m, key), CKR_OK);
    let mut card = card;
    card.remove();
    let mut data = *b"gone";
    let mut sig = [0u8; 256];
    let mut len: CK_ULONG = 256;
    let rv = call!(
        f,
        C_Sign,
        s,
        data.as_mut_ptr(),
        4,
        sig.as_mut_ptr(),
        &mut len
    );
    assert!(
        rv == CKR_DEVICE_REMOVED || rv == CKR_SESSION_HANDLE_INVALID,
        "{rv:#x}"
    );
    let rv = call!(f, C_GetSessionInfo, s, &mut si);
    assert!(
        rv == CKR_DEVICE_REMOVED || rv == CKR_SESSION_HANDLE_INVALID,
        "{rv:#x}"
    );
    let mut ti = CK_TOKEN_INFO::default();
    assert_eq!(
        call!(f, C_GetTokenInfo, slot, &mut ti),
        CKR_TOKEN_NOT_PRESENT
    );
    drop(card);
    // Inserted again: a new token, the old session stays dead.
    let card = Plugged::new("athena-1024");
    let slot2 = slot_of_reader(f);
    assert_eq!(slot2, slot, "same reader, same slot");
    assert_ne!(call!(f, C_GetSessionInfo, s, &mut si), CKR_OK);
    let s = open(f, slot);
    assert_eq!(login(f, s, card.profile.pin.expose()), CKR_OK);
    let key = find_one(f, s, CKO_PRIVATE_KEY);
    sign(f, s, key, CKM_SHA256_RSA_PKCS, b"again").unwrap();
    assert_eq!(call!(f, C_CloseSession, s), CKR_OK);
    assert!(
        !card.handle.pin_verified(),
        "closing the last session resets the card"
    );
    assert_eq!(call!(f, C_Finalize, null_mut()), CKR_OK);

    // The trace has the calls and never the PIN or the signed data.
    let full = std::fs::read_to_string(&log).unwrap();
    // Without the time stamps (digits that could match a PIN by chance).
    let trace: String = full
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |x| x.1))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(trace.contains("C_Login -> CKR_OK"), "{trace}");
    assert!(
        trace.contains("C_Sign -> CKR_DEVICE_REMOVED")
            || trace.contains("C_Sign -> CKR_SESSION_HANDLE_INVALID")
    );
    assert!(!trace.contains(&pin), "the PIN is in the trace");
    assert!(
        !trace.contains("robust") && !trace.contains("again"),
        "signed data in the trace"
    );
    let _ = std::fs::remove_file(&log);
}
