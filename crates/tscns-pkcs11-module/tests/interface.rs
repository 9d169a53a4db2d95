//! PKCS#11 3.0 `C_GetInterfaceList` and `C_GetInterface`: one interface, "PKCS 11" version 2.40,
//! whose table is the one `C_GetFunctionList` gives and works (`C_Initialize`, `C_GetInfo`,
//! `C_Finalize` through it). Size queries, short buffers, NULL pointers, unknown names, versions
//! and flags follow the standard. Needs no card.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

use std::ptr::null_mut;

use cryptoki_sys::*;
use tscns_pkcs11_module::{C_GetFunctionList, C_GetInterface, C_GetInterfaceList};

fn function_list() -> *mut CK_FUNCTION_LIST {
    let mut list = null_mut();
    // SAFETY: a valid out-pointer.
    assert_eq!(unsafe { C_GetFunctionList(&mut list) }, CKR_OK);
    list
}

fn blank() -> CK_INTERFACE {
    CK_INTERFACE {
        pInterfaceName: null_mut(),
        pFunctionList: null_mut(),
        flags: 0,
    }
}

/// The interface's name as a Rust string.
fn name(i: &CK_INTERFACE) -> String {
    // SAFETY: the module's NUL-terminated static name.
    unsafe { std::ffi::CStr::from_ptr(i.pInterfaceName as *const std::ffi::c_char) }
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_interface_list_has_pkcs11_2_40() {
    let mut n: CK_ULONG = 0;
    // SAFETY: NULL list: a count query.
    assert_eq!(unsafe { C_GetInterfaceList(null_mut(), &mut n) }, CKR_OK);
    assert_eq!(n, 1);
    // SAFETY: a NULL count is refused, nothing written.
    assert_eq!(
        unsafe { C_GetInterfaceList(null_mut(), null_mut()) },
        CKR_ARGUMENTS_BAD
    );
    let mut list = [blank(), blank()];
    let mut n: CK_ULONG = 0;
    // SAFETY: a buffer of `n` = 0 interfaces: too small, count set.
    assert_eq!(
        unsafe { C_GetInterfaceList(list.as_mut_ptr(), &mut n) },
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(n, 1);
    assert!(list[0].pFunctionList.is_null(), "nothing written");
    let mut n: CK_ULONG = 2;
    // SAFETY: a buffer of 2 interfaces.
    assert_eq!(
        unsafe { C_GetInterfaceList(list.as_mut_ptr(), &mut n) },
        CKR_OK
    );
    assert_eq!(n, 1);
    assert_eq!(name(&list[0]), "PKCS 11");
    assert_eq!(list[0].flags, 0);
    assert_eq!(list[0].pFunctionList, function_list() as *mut _);
    // SAFETY: the module's static table.
    let f = unsafe { &*(list[0].pFunctionList as *const CK_FUNCTION_LIST) };
    assert_eq!((f.version.major, f.version.minor), (2, 40));
    assert!(list[1].pFunctionList.is_null(), "one interface only");
}

#[test]
fn get_interface_finds_pkcs11_and_refuses_the_rest() {
    let mut out: *mut CK_INTERFACE = null_mut();
    // SAFETY: NULL name and version: the default interface.
    assert_eq!(
        unsafe { C_GetInterface(null_mut(), null_mut(), &mut out, 0) },
        CKR_OK
    );
    // SAFETY: the module's static interface.
    let i = unsafe { &*out };
    assert_eq!(name(i), "PKCS 11");
    assert_eq!(i.pFunctionList, function_list() as *mut _);

    let mut pkcs11 = *b"PKCS 11\0";
    let mut v240 = CK_VERSION {
        major: 2,
        minor: 40,
    };
    let mut again: *mut CK_INTERFACE = null_mut();
    // SAFETY: a NUL-terminated name, a valid version, a valid out-pointer.
    assert_eq!(
        unsafe { C_GetInterface(pkcs11.as_mut_ptr(), &mut v240, &mut again, 0) },
        CKR_OK
    );
    assert_eq!(again, out);

    let mut v30 = CK_VERSION { major: 3, minor: 0 };
    let mut other = *b"Vendor X\0";
    let cases: [(*mut CK_UTF8CHAR, *mut CK_VERSION, CK_FLAGS); 3] = [
        (pkcs11.as_mut_ptr(), &mut v30, 0),
        (other.as_mut_ptr(), null_mut(), 0),
        (null_mut(), null_mut(), CKF_INTERFACE_FORK_SAFE),
    ];
    for (n, v, fl) in cases {
        let mut none: *mut CK_INTERFACE = null_mut();
        // SAFETY: valid pointers; the module has no such interface.
        assert_eq!(
            unsafe { C_GetInterface(n, v, &mut none, fl) },
            CKR_ARGUMENTS_BAD
        );
        assert!(none.is_null());
    }
    // SAFETY: a NULL out-pointer is refused.
    assert_eq!(
        unsafe { C_GetInterface(null_mut(), null_mut(), null_mut(), 0) },
        CKR_ARGUMENTS_BAD
    );

    // The table works through the interface: initialise, ask, finalise.
    // SAFETY: the module's static table.
    let f = unsafe { &*(i.pFunctionList as *const CK_FUNCTION_LIST) };
    // SAFETY: NULL init args (no locking asked for), a valid CK_INFO, NULL reserved.
    unsafe {
        assert_eq!((f.C_Initialize.unwrap())(null_mut()), CKR_OK);
        let mut info = CK_INFO::default();
        assert_eq!((f.C_GetInfo.unwrap())(&mut info), CKR_OK);
        assert_eq!(
            (info.cryptokiVersion.major, info.cryptokiVersion.minor),
            (2, 40)
        );
        assert_eq!((f.C_Finalize.unwrap())(null_mut()), CKR_OK);
    }
}

/// The built `libtscns_pkcs11_module.so` next to this test binary.
fn cdylib() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    [deps, deps.parent().unwrap()]
        .iter()
        .map(|d| d.join("libtscns_pkcs11_module.so"))
        .find(|p| p.exists())
        .expect("libtscns_pkcs11_module.so built by cargo next to the test")
}

/// A PKCS#11 3.0-aware loader nobody here wrote: the `cryptoki` crate asks `C_GetInterface`
/// first (its answer must be `CKR_OK`, or loading fails), sees version 2.40, and uses the table.
#[test]
fn cryptoki_loads_the_module_through_c_get_interface() {
    let lib = cdylib();
    let p = cryptoki::context::Pkcs11::new(&lib).expect("cryptoki loads the module");
    p.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ))
    .unwrap();
    let info = p.get_library_info().unwrap();
    assert_eq!(info.manufacturer_id().trim(), "tscns");
    assert_eq!(
        (
            info.cryptoki_version().major(),
            info.cryptoki_version().minor()
        ),
        (2, 40)
    );
    p.finalize().unwrap();
}
