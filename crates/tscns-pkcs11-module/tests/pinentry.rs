//! Protected authentication path: with `TSCNS_PKCS11_PINENTRY` set the token says
//! `CKF_PROTECTED_AUTHENTICATION_PATH`, needs no login before use, and asks a pinentry program
//! (Assuan) for the PIN at `C_Login` with a NULL PIN or at the first signature. Here a stub
//! pinentry written for the test answers: the PIN, Cancel, or a wrong PIN; it records every
//! prompt and every GETPIN, so the test sees that one login asks once and sends at most one PIN.
//! Through pcscd + vpcd; feature `system-tests`.
#![cfg(feature = "system-tests")]
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::ptr::null_mut;

use common::{Plugged, Scratch, PINENTRY_STUB, READER};
use cryptoki_sys::*;

macro_rules! call {
    ($f:expr, $name:ident $(, $arg:expr)*) => {
        // SAFETY: the module's own function table, called with valid or NULL arguments.
        unsafe { ($f.$name.expect(stringify!($name)))($($arg),*) }
    };
}

fn calls(dir: &Scratch) -> usize {
    std::fs::read_to_string(dir.path("calls"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[test]
fn the_module_asks_for_the_pin_itself() {
    let dir = Scratch::new("pinentry");
    let stub = dir.path("pinentry-stub");
    std::fs::write(&stub, PINENTRY_STUB).unwrap();
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::env::set_var("TSCNS_PKCS11_READER", READER);
    std::env::set_var("TSCNS_PKCS11_PINENTRY", &stub);
    std::env::set_var("TSCNS_PKCS11_QUERY_PIN_TRIES", "1");
    let card = Plugged::new("default");
    let h = card.handle.clone();
    let pin = card.profile.pin.expose().to_owned();
    let holder = format!(
        "{} {}",
        card.profile.personal_data.given_name, card.profile.personal_data.surname
    );

    let mut list: *mut CK_FUNCTION_LIST = null_mut();
    // SAFETY: a valid out-pointer.
    assert_eq!(
        unsafe { tscns_pkcs11_module::C_GetFunctionList(&mut list) },
        CKR_OK
    );
    // SAFETY: the module's static table.
    let f: &'static CK_FUNCTION_LIST = unsafe { &*list };
    let mut args = CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags: CKF_OS_LOCKING_OK,
        pReserved: null_mut(),
    };
    assert_eq!(
        call!(f, C_Initialize, std::ptr::addr_of_mut!(args).cast()),
        CKR_OK
    );
    let mut n: CK_ULONG = 4;
    let mut slots = [0; 4];
    assert_eq!(
        call!(f, C_GetSlotList, CK_TRUE, slots.as_mut_ptr(), &mut n),
        CKR_OK
    );
    assert_eq!(n, 1);
    let slot = slots[0];
    let mut ti = CK_TOKEN_INFO::default();
    assert_eq!(call!(f, C_GetTokenInfo, slot, &mut ti), CKR_OK);
    assert_ne!(ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH, 0);
    assert_eq!(
        ti.flags & CKF_LOGIN_REQUIRED,
        0,
        "no login needed before use"
    );

    let mut s = 0;
    assert_eq!(
        call!(
            f,
            C_OpenSession,
            slot,
            CKF_SERIAL_SESSION,
            null_mut(),
            None,
            &mut s
        ),
        CKR_OK
    );
    // The private key is visible without a login.
    let mut class = CKO_PRIVATE_KEY;
    let mut t = [CK_ATTRIBUTE {
        type_: CKA_CLASS,
        pValue: std::ptr::addr_of_mut!(class).cast(),
        ulValueLen: std::mem::size_of::<CK_OBJECT_CLASS>() as CK_ULONG,
    }];
    assert_eq!(call!(f, C_FindObjectsInit, s, t.as_mut_ptr(), 1), CKR_OK);
    let mut key = 0;
    assert_eq!(call!(f, C_FindObjects, s, &mut key, 1, &mut n), CKR_OK);
    assert_eq!(n, 1);
    assert_eq!(call!(f, C_FindObjectsFinal, s), CKR_OK);

    // Cancel: CKR_FUNCTION_CANCELED, nothing sent to the card.
    std::fs::write(dir.path("mode"), "cancel").unwrap();
    assert_eq!(
        call!(f, C_Login, s, CKU_USER, null_mut(), 0),
        CKR_FUNCTION_CANCELED
    );
    assert_eq!(calls(&dir), 1);
    assert_eq!(h.pin_tries_left(), 3);

    // A wrong PIN: asked once, sent once, no retry loop.
    std::fs::write(dir.path("mode"), "99999").unwrap();
    assert_eq!(
        call!(f, C_Login, s, CKU_USER, null_mut(), 0),
        CKR_PIN_INCORRECT
    );
    assert_eq!(calls(&dir), 2, "one C_Login, one question");
    assert_eq!(h.pin_tries_left(), 2, "one C_Login, one PIN sent");
    let prompts = std::fs::read_to_string(dir.path("prompts")).unwrap();
    assert!(
        prompts.contains(&holder),
        "the prompt names the holder: {prompts}"
    );
    assert!(
        prompts
            .lines()
            .nth(1)
            .unwrap()
            .contains("Tentativi rimasti: 3"),
        "{prompts}"
    );

    // The first signature asks for the PIN (tries left in the prompt), later ones do not.
    std::fs::write(dir.path("mode"), &pin).unwrap();
    let mut m = CK_MECHANISM {
        mechanism: CKM_SHA256_RSA_PKCS,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let mut sig = [0u8; 256];
    for i in 0..2 {
        assert_eq!(call!(f, C_SignInit, s, &mut m, key), CKR_OK);
        let mut data = *b"pinentry";
        let mut len: CK_ULONG = 256;
        assert_eq!(
            call!(
                f,
                C_Sign,
                s,
                data.as_mut_ptr(),
                8,
                sig.as_mut_ptr(),
                &mut len
            ),
            CKR_OK,
            "signature {i}"
        );
        assert_eq!(len, 256);
    }
    assert_eq!(calls(&dir), 3, "asked once for both signatures");
    let prompts = std::fs::read_to_string(dir.path("prompts")).unwrap();
    assert!(
        prompts
            .lines()
            .nth(2)
            .unwrap()
            .contains("Tentativi rimasti: 2"),
        "{prompts}"
    );
    assert_eq!(h.pin_tries_left(), 3);
    assert!(h.pin_verified());
    // The PIN lives only in the card's session: closing the session resets the card.
    assert_eq!(call!(f, C_CloseSession, s), CKR_OK);
    assert!(!h.pin_verified());

    // C_Login with a NULL PIN logs in through pinentry.
    assert_eq!(
        call!(
            f,
            C_OpenSession,
            slot,
            CKF_SERIAL_SESSION,
            null_mut(),
            None,
            &mut s
        ),
        CKR_OK
    );
    assert_eq!(call!(f, C_Login, s, CKU_USER, null_mut(), 0), CKR_OK);
    assert_eq!(calls(&dir), 4);
    assert!(h.pin_verified());
    assert_eq!(call!(f, C_Finalize, null_mut()), CKR_OK);
    assert!(!h.pin_verified());
    std::env::remove_var("TSCNS_PKCS11_PINENTRY");
}
