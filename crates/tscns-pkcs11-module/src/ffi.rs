//! The C ABI: the only module of the workspace with `unsafe` code.
//!
//! Every entry point (1) catches panics and answers `CKR_GENERAL_ERROR`, (2) checks each pointer
//! and length the caller gave and turns it into a safe Rust value (or `CKR_ARGUMENTS_BAD`), (3)
//! calls [`Module`] under the one global lock, and (4) writes the results back following the
//! PKCS#11 2.40 conventions (§5.2 "Conventions for functions returning output in a
//! variable-length buffer": a NULL buffer asks for the length, a short one gives
//! `CKR_BUFFER_TOO_SMALL` with the length needed). Nothing else in the crate sees a raw pointer.
//!
//! The module locks itself (one `std::sync::Mutex`), so it accepts `CKF_OS_LOCKING_OK` and
//! callers that pass no locking at all; it refuses (`CKR_CANT_LOCK`) only callers that insist
//! on their own mutex functions without allowing OS locking.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(non_snake_case)]

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, PoisonError};

use cryptoki_sys::*;

use crate::config::Config;
use crate::log;
use crate::mechanism::{Mechanism, PssParams};
use crate::module::{Module, MAX_PIN_LEN, MIN_PIN_LEN};
use crate::objects::{Attr, UNAVAILABLE};

/// The one global state: `None` until `C_Initialize`, again after `C_Finalize`.
static STATE: Mutex<Option<Module>> = Mutex::new(None);

type R = Result<(), CK_RV>;

/// When the process exits (or the module is unloaded) without `C_Finalize` — browsers and curl
/// through libp11 often do — every PC/SC connection to which a PIN was presented resets its card
/// ([`tscns_apdu::pcsc::close_all`], bounded), as `C_Finalize` would have. Without this, pcscd
/// would leave the card verified for any other client already connected. The loader runs this
/// entry of `.fini_array` before it unloads libpcsclite, which this module depends on.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".fini_array"]
static RESET_AT_EXIT: extern "C" fn() = reset_at_exit;

/// The process that called `C_Initialize`: a child forked from it without exec has copies of the
/// parent's connection list but none of its worker threads, and must leave the parent's cards
/// alone (waiting for threads it does not have would stall, or hang, its exit).
static INITIALIZED_BY: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[cfg(target_os = "linux")]
extern "C" fn reset_at_exit() {
    if INITIALIZED_BY.load(std::sync::atomic::Ordering::SeqCst) != std::process::id() {
        return;
    }
    let _ = catch_unwind(|| {
        tscns_apdu::pcsc::close_all(std::time::Duration::from_secs(5));
    });
}

/// Runs one entry point: panics become `CKR_GENERAL_ERROR`, and the call is traced.
fn entry(name: &'static str, f: impl FnOnce() -> R) -> CK_RV {
    let rv = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(rv)) => rv,
        Err(_) => CKR_GENERAL_ERROR,
    };
    log::call(name, rv);
    rv
}

/// Runs `f` on the initialised module under the global lock.
fn with_module<T>(f: impl FnOnce(&mut Module) -> Result<T, CK_RV>) -> Result<T, CK_RV> {
    let mut g = STATE.lock().unwrap_or_else(PoisonError::into_inner);
    let m = g.as_mut().ok_or(CKR_CRYPTOKI_NOT_INITIALIZED)?;
    f(m)
}

// ---- pointer conversions ---------------------------------------------------------------------

/// An output parameter.
///
/// # Safety
/// `p` is NULL or valid for reads and writes of a `T` for the length of the call.
unsafe fn out<'a, T>(p: *mut T) -> Result<&'a mut T, CK_RV> {
    // SAFETY: the caller guarantees `p` is NULL or valid; NULL is refused.
    unsafe { p.as_mut() }.ok_or(CKR_ARGUMENTS_BAD)
}

/// An input buffer: NULL is refused unless `len` is 0.
///
/// # Safety
/// `p` is NULL or valid for reads of `len` elements for the length of the call.
unsafe fn input<'a, T>(p: *const T, len: CK_ULONG) -> Result<&'a [T], CK_RV> {
    let len = usize::try_from(len).map_err(|_| CKR_ARGUMENTS_BAD)?;
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() || len > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-NULL, and the caller guarantees `len` readable elements.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// An optional secret (PIN): NULL gives `None`.
///
/// # Safety
/// As [`input`].
unsafe fn secret<'a>(p: *const CK_UTF8CHAR, len: CK_ULONG) -> Result<Option<&'a [u8]>, CK_RV> {
    if p.is_null() {
        return if len == 0 {
            Ok(None)
        } else {
            Err(CKR_ARGUMENTS_BAD)
        };
    }
    // SAFETY: as the caller guarantees.
    unsafe { input(p, len) }.map(Some)
}

/// Writes a list into a caller buffer (PKCS#11 2.40 §5.2): `buf` NULL asks for the length.
///
/// # Safety
/// `buf` is NULL or valid for writes of `*count` elements.
unsafe fn write_list<T: Copy>(buf: *mut T, count: &mut CK_ULONG, items: &[T]) -> R {
    let n = items.len() as CK_ULONG;
    if buf.is_null() {
        *count = n;
        return Ok(());
    }
    if *count < n {
        *count = n;
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    // SAFETY: `buf` holds at least `*count >= n` elements (caller's guarantee).
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), buf, items.len()) };
    *count = n;
    Ok(())
}

/// A mechanism with its parameter read.
///
/// # Safety
/// `p` is NULL or a valid `CK_MECHANISM` whose parameter pointer is valid for its length.
unsafe fn mechanism(p: *const CK_MECHANISM) -> Result<Mechanism, CK_RV> {
    // SAFETY: as the caller guarantees.
    let m = unsafe { p.as_ref() }.ok_or(CKR_ARGUMENTS_BAD)?;
    let param_len = usize::try_from(m.ulParameterLen).map_err(|_| CKR_ARGUMENTS_BAD)?;
    if param_len > 0 && m.pParameter.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    let pss = if param_len == std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>() {
        // SAFETY: non-NULL and `ulParameterLen` bytes long; read unaligned to be lenient.
        let p = unsafe { std::ptr::read_unaligned(m.pParameter as *const CK_RSA_PKCS_PSS_PARAMS) };
        Some(PssParams {
            hash_alg: p.hashAlg,
            mgf: p.mgf,
            salt_len: p.sLen,
        })
    } else {
        None
    };
    Ok(Mechanism {
        kind: m.mechanism,
        pss,
        param_len,
    })
}

/// A search template: (type, value) pairs.
///
/// # Safety
/// `p` is NULL or valid for `n` attributes whose value pointers are valid for their lengths.
unsafe fn template(
    p: *const CK_ATTRIBUTE,
    n: CK_ULONG,
) -> Result<Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>, CK_RV> {
    // SAFETY: as the caller guarantees.
    let attrs = unsafe { input(p, n) }?;
    attrs
        .iter()
        .map(|a| {
            // SAFETY: as the caller guarantees for each value.
            let v = unsafe { input(a.pValue as *const u8, a.ulValueLen) }?;
            Ok((a.type_, v.to_vec()))
        })
        .collect()
}

/// Blank-padded fixed-size text field (PKCS#11 strings are not NUL-terminated), cut at a
/// character boundary.
fn padded<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if i + c.len_utf8() > N {
            break;
        }
        end = i + c.len_utf8();
    }
    out[..end].copy_from_slice(&text.as_bytes()[..end]);
    out
}

const VERSION_2_40: CK_VERSION = CK_VERSION {
    major: 2,
    minor: 40,
};

fn library_version() -> CK_VERSION {
    CK_VERSION {
        major: env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0),
        minor: env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0),
    }
}

// ---- general purpose -------------------------------------------------------------------------

#[no_mangle]
unsafe extern "C" fn C_Initialize(args: *mut c_void) -> CK_RV {
    entry("C_Initialize", || {
        // SAFETY: PKCS#11 says pInitArgs is NULL or a CK_C_INITIALIZE_ARGS.
        if let Some(a) = unsafe { (args as *const CK_C_INITIALIZE_ARGS).as_ref() } {
            if !a.pReserved.is_null() {
                return Err(CKR_ARGUMENTS_BAD);
            }
            let given = [
                a.CreateMutex.is_some(),
                a.DestroyMutex.is_some(),
                a.LockMutex.is_some(),
                a.UnlockMutex.is_some(),
            ];
            if given.iter().any(|&g| g) && !given.iter().all(|&g| g) {
                return Err(CKR_ARGUMENTS_BAD);
            }
            if given[0] && a.flags & CKF_OS_LOCKING_OK == 0 {
                return Err(CKR_CANT_LOCK);
            }
        }
        let mut g = STATE.lock().unwrap_or_else(PoisonError::into_inner);
        if g.is_some() {
            return Err(CKR_CRYPTOKI_ALREADY_INITIALIZED);
        }
        let (config, warning): (Config, _) = Config::load();
        log::open(config.log.as_deref());
        if let Some(w) = warning {
            log::line(&w);
        }
        log::line(&format!(
            "tscns-pkcs11-module {}: pinentry mode {}, reader filter {:?}",
            env!("CARGO_PKG_VERSION"),
            config.pinentry_mode(),
            config.reader
        ));
        *g = Some(Module::new(config));
        INITIALIZED_BY.store(std::process::id(), std::sync::atomic::Ordering::SeqCst);
        Ok(())
    })
}

#[no_mangle]
unsafe extern "C" fn C_Finalize(reserved: *mut c_void) -> CK_RV {
    entry("C_Finalize", || {
        if !reserved.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let m = STATE
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or(CKR_CRYPTOKI_NOT_INITIALIZED)?;
        m.finalize();
        Ok(())
    })
}

#[no_mangle]
unsafe extern "C" fn C_GetInfo(info: *mut CK_INFO) -> CK_RV {
    entry("C_GetInfo", || {
        with_module(|_| Ok(()))?;
        // SAFETY: PKCS#11 says pInfo points to a CK_INFO.
        let info = unsafe { out(info) }?;
        *info = CK_INFO {
            cryptokiVersion: VERSION_2_40,
            manufacturerID: padded("tscns"),
            flags: 0,
            libraryDescription: padded("TS-CNS PKCS#11 module"),
            libraryVersion: library_version(),
        };
        Ok(())
    })
}

/// The PKCS#11 entry point programs look up: gives the table of every function.
///
/// # Safety
/// `list` is NULL (refused with `CKR_ARGUMENTS_BAD`) or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    entry("C_GetFunctionList", || {
        // SAFETY: as the caller guarantees.
        let list = unsafe { out(list) }?;
        *list = std::ptr::addr_of!(FUNCTION_LIST) as *mut CK_FUNCTION_LIST;
        Ok(())
    })
}

// ---- PKCS#11 3.0 interfaces ------------------------------------------------------------------

/// The name of the one interface (PKCS#11 3.0 §5.2: "PKCS 11"), NUL-terminated.
const INTERFACE_NAME: &[u8; 8] = b"PKCS 11\0";

/// `CK_INTERFACE` holds raw pointers, so a static needs a wrapper that says it is shared safely:
/// both pointers are to immutable statics of this module, which callers only read.
#[repr(transparent)]
struct SharedInterface(CK_INTERFACE);

// SAFETY: the pointers inside are to `INTERFACE_NAME` and `FUNCTION_LIST`, immutable statics that
// live as long as the library; nothing writes through them.
unsafe impl Sync for SharedInterface {}

/// The module's one interface: "PKCS 11" with the PKCS#11 2.40 function table (this module speaks
/// 2.40; PKCS#11 3.0 §5.2 lets a 3.0 caller find a 2.x table this way, its `version` says which).
static INTERFACE: SharedInterface = SharedInterface(CK_INTERFACE {
    pInterfaceName: INTERFACE_NAME.as_ptr() as *mut CK_UTF8CHAR,
    pFunctionList: std::ptr::addr_of!(FUNCTION_LIST) as *mut c_void,
    flags: 0,
});

/// `C_GetInterfaceList` (PKCS#11 3.0 §5.2): the one interface, "PKCS 11" version 2.40. A NULL
/// list asks for the count; a short one gives `CKR_BUFFER_TOO_SMALL` with the count needed.
///
/// # Safety
/// `count` is NULL (refused) or valid for reads and writes of a `CK_ULONG`; `list` is NULL or
/// valid for writing `*count` interfaces.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterfaceList(
    list: *mut CK_INTERFACE,
    count: *mut CK_ULONG,
) -> CK_RV {
    entry("C_GetInterfaceList", || {
        // SAFETY: as the caller guarantees.
        let count = unsafe { out(count) }?;
        if list.is_null() {
            *count = 1;
            return Ok(());
        }
        if *count < 1 {
            *count = 1;
            return Err(CKR_BUFFER_TOO_SMALL);
        }
        // SAFETY: `list` is valid for `*count` >= 1 interfaces, as the caller guarantees.
        unsafe { list.write(INTERFACE.0) };
        *count = 1;
        Ok(())
    })
}

/// `C_GetInterface` (PKCS#11 3.0 §5.2): the interface named `name` (NULL: the default, "PKCS 11")
/// at `version` (NULL: any) with at least the `flags` asked for; `CKR_ARGUMENTS_BAD` when this
/// module has none such.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `version` is NULL or valid for reading a
/// `CK_VERSION`; `interface` is NULL (refused) or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterface(
    name: *mut CK_UTF8CHAR,
    version: *mut CK_VERSION,
    interface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    entry("C_GetInterface", || {
        // SAFETY: as the caller guarantees.
        let interface = unsafe { out(interface) }?;
        if !name.is_null() {
            // SAFETY: a NUL-terminated string, as the caller guarantees.
            let asked = unsafe { std::ffi::CStr::from_ptr(name as *const std::ffi::c_char) };
            if asked.to_bytes_with_nul() != INTERFACE_NAME {
                return Err(CKR_ARGUMENTS_BAD);
            }
        }
        // SAFETY: NULL or valid for reading, as the caller guarantees.
        if let Some(v) = unsafe { version.as_ref() } {
            if (v.major, v.minor) != (VERSION_2_40.major, VERSION_2_40.minor) {
                return Err(CKR_ARGUMENTS_BAD);
            }
        }
        if flags & !INTERFACE.0.flags != 0 {
            return Err(CKR_ARGUMENTS_BAD);
        }
        *interface = std::ptr::addr_of!(INTERFACE.0) as *mut CK_INTERFACE;
        Ok(())
    })
}

// ---- slots and tokens ------------------------------------------------------------------------

#[no_mangle]
unsafe extern "C" fn C_GetSlotList(
    present: CK_BBOOL,
    list: *mut CK_SLOT_ID,
    count: *mut CK_ULONG,
) -> CK_RV {
    entry("C_GetSlotList", || {
        with_module(|m| {
            // SAFETY: pulCount points to a CK_ULONG; pSlotList is NULL or holds *pulCount ids.
            let count = unsafe { out(count) }?;
            let slots = m.slot_list(present != CK_FALSE);
            unsafe { write_list(list, count, &slots) }
        })
    })
}

#[no_mangle]
unsafe extern "C" fn C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    entry("C_GetSlotInfo", || {
        with_module(|m| {
            // SAFETY: pInfo points to a CK_SLOT_INFO.
            let info = unsafe { out(info) }?;
            let v = m.slot_info(slot)?;
            *info = CK_SLOT_INFO {
                slotDescription: padded(&v.description),
                manufacturerID: padded("PC/SC"),
                flags: CKF_REMOVABLE_DEVICE
                    | CKF_HW_SLOT
                    | if v.token_present {
                        CKF_TOKEN_PRESENT
                    } else {
                        0
                    },
                hardwareVersion: CK_VERSION { major: 0, minor: 0 },
                firmwareVersion: CK_VERSION { major: 0, minor: 0 },
            };
            Ok(())
        })
    })
}

#[no_mangle]
unsafe extern "C" fn C_GetTokenInfo(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    entry("C_GetTokenInfo", || {
        with_module(|m| {
            // SAFETY: pInfo points to a CK_TOKEN_INFO.
            let info = unsafe { out(info) }?;
            let v = m.token_info(slot)?;
            *info = CK_TOKEN_INFO {
                label: padded(&v.label),
                manufacturerID: padded("TS-CNS"),
                model: padded(&v.model),
                serialNumber: padded(&v.serial),
                flags: v.flags,
                ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
                ulSessionCount: v.sessions as CK_ULONG,
                ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
                ulRwSessionCount: v.rw_sessions as CK_ULONG,
                ulMaxPinLen: MAX_PIN_LEN as CK_ULONG,
                ulMinPinLen: MIN_PIN_LEN as CK_ULONG,
                ulTotalPublicMemory: UNAVAILABLE,
                ulFreePublicMemory: UNAVAILABLE,
                ulTotalPrivateMemory: UNAVAILABLE,
                ulFreePrivateMemory: UNAVAILABLE,
                hardwareVersion: CK_VERSION { major: 0, minor: 0 },
                firmwareVersion: CK_VERSION {
                    major: v.firmware.0,
                    minor: v.firmware.1,
                },
                utcTime: [b' '; 16],
            };
            Ok(())
        })
    })
}

#[no_mangle]
unsafe extern "C" fn C_GetMechanismList(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    entry("C_GetMechanismList", || {
        with_module(|m| {
            // SAFETY: pulCount points to a CK_ULONG; pMechanismList is NULL or holds *pulCount.
            let count = unsafe { out(count) }?;
            let mechs = m.mechanisms(slot)?;
            unsafe { write_list(list, count, &mechs) }
        })
    })
}

#[no_mangle]
unsafe extern "C" fn C_GetMechanismInfo(
    slot: CK_SLOT_ID,
    kind: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    entry("C_GetMechanismInfo", || {
        with_module(|m| {
            // SAFETY: pInfo points to a CK_MECHANISM_INFO.
            let info = unsafe { out(info) }?;
            let (min, max, flags) = m.mechanism_info(slot, kind)?;
            *info = CK_MECHANISM_INFO {
                ulMinKeySize: min,
                ulMaxKeySize: max,
                flags,
            };
            Ok(())
        })
    })
}

#[no_mangle]
unsafe extern "C" fn C_InitToken(
    slot: CK_SLOT_ID,
    _pin: *mut CK_UTF8CHAR,
    _len: CK_ULONG,
    _label: *mut CK_UTF8CHAR,
) -> CK_RV {
    entry("C_InitToken", || {
        with_module(|m| {
            m.slot_info(slot)?;
            // A CNS is personalised by its issuer: it cannot be initialised.
            Err(CKR_FUNCTION_NOT_SUPPORTED)
        })
    })
}

#[no_mangle]
unsafe extern "C" fn C_InitPIN(
    h: CK_SESSION_HANDLE,
    pin: *mut CK_UTF8CHAR,
    len: CK_ULONG,
) -> CK_RV {
    entry("C_InitPIN", || {
        with_module(|m| {
            m.check_session(h)?;
            // SAFETY: pPin is NULL or holds ulPinLen bytes.
            let pin = unsafe { secret(pin, len) }?;
            m.init_pin(h, pin)
        })
    })
}

#[no_mangle]
unsafe extern "C" fn C_SetPIN(
    h: CK_SESSION_HANDLE,
    old: *mut CK_UTF8CHAR,
    old_len: CK_ULONG,
    new: *mut CK_UTF8CHAR,
    new_len: CK_ULONG,
) -> CK_RV {
    entry("C_SetPIN", || {
        with_module(|m| {
            m.check_session(h)?;
            // SAFETY: each PIN pointer is NULL or holds its length in bytes.
            let old = unsafe { secret(old, old_len) }?;
            let new = unsafe { secret(new, new_len) }?;
            m.set_pin(h, old, new)
        })
    })
}

// ---- sessions --------------------------------------------------------------------------------

#[no_mangle]
unsafe extern "C" fn C_OpenSession(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    _app: *mut c_void,
    _notify: CK_NOTIFY,
    session: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    entry("C_OpenSession", || {
        with_module(|m| {
            // SAFETY: phSession points to a CK_SESSION_HANDLE.
            let session = unsafe { out(session) }?;
            *session = m.open_session(slot, flags)?;
            Ok(())
        })
    })
}

#[no_mangle]
unsafe extern "C" fn C_CloseSession(h: CK_SESSION_HANDLE) -> CK_RV {
    entry("C_CloseSession", || with_module(|m| m.close_session(h)))
}

#[no_mangle]
unsafe extern "C" fn C_CloseAllSessions(slot: CK_SLOT_ID) -> CK_RV {
    entry("C_CloseAllSessions", || {
        with_module(|m| m.close_all_sessions(slot))
    })
}

#[no_mangle]
unsafe extern "C" fn C_GetSessionInfo(h: CK_SESSION_HANDLE, info: *mut CK_SESSION_INFO) -> CK_RV {
    entry("C_GetSessionInfo", || {
        with_module(|m| {
            let v = m.session_info(h)?;
            // SAFETY: pInfo points to a CK_SESSION_INFO.
            let info = unsafe { out(info) }?;
            *info = CK_SESSION_INFO {
                slotID: v.slot,
                state: v.state,
                flags: v.flags,
                ulDeviceError: 0,
            };
            Ok(())
        })
    })
}

#[no_mangle]
unsafe extern "C" fn C_Login(
    h: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    len: CK_ULONG,
) -> CK_RV {
    entry("C_Login", || {
        with_module(|m| {
            m.check_session(h)?;
            // SAFETY: pPin is NULL or holds ulPinLen bytes.
            let pin = unsafe { secret(pin, len) }?;
            m.login(h, user, pin)
        })
    })
}

#[no_mangle]
unsafe extern "C" fn C_Logout(h: CK_SESSION_HANDLE) -> CK_RV {
    entry("C_Logout", || with_module(|m| m.logout(h)))
}

// ---- objects ---------------------------------------------------------------------------------

#[no_mangle]
unsafe extern "C" fn C_GetObjectSize(
    h: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    size: *mut CK_ULONG,
) -> CK_RV {
    entry("C_GetObjectSize", || {
        with_module(|m| {
            let n = m.object_size(h, object)?;
            // SAFETY: pulSize points to a CK_ULONG.
            *unsafe { out(size) }? = n;
            Ok(())
        })
    })
}

#[no_mangle]
unsafe extern "C" fn C_GetAttributeValue(
    h: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    entry("C_GetAttributeValue", || {
        with_module(|m| {
            m.check_session(h)?;
            let n = usize::try_from(count).map_err(|_| CKR_ARGUMENTS_BAD)?;
            if n == 0 {
                // Nothing asked: the object must still exist.
                m.attributes(h, object, &[])?;
                return Ok(());
            }
            if attrs.is_null() || n > isize::MAX as usize / std::mem::size_of::<CK_ATTRIBUTE>() {
                return Err(CKR_ARGUMENTS_BAD);
            }
            // SAFETY: pTemplate holds ulCount attributes (caller's guarantee).
            let template = unsafe { std::slice::from_raw_parts_mut(attrs, n) };
            let types: Vec<CK_ATTRIBUTE_TYPE> = template.iter().map(|a| a.type_).collect();
            let values = m.attributes(h, object, &types)?;
            // PKCS#11 2.40 §5.7 C_GetAttributeValue: every attribute is processed; the result
            // is one of the errors met, or CKR_OK.
            let mut rv = CKR_OK;
            for (a, v) in template.iter_mut().zip(values) {
                match v {
                    Attr::Sensitive => {
                        a.ulValueLen = UNAVAILABLE;
                        rv = CKR_ATTRIBUTE_SENSITIVE;
                    }
                    Attr::Invalid => {
                        a.ulValueLen = UNAVAILABLE;
                        rv = CKR_ATTRIBUTE_TYPE_INVALID;
                    }
                    Attr::Value(bytes) => {
                        let len = bytes.len() as CK_ULONG;
                        if a.pValue.is_null() {
                            a.ulValueLen = len;
                        } else if a.ulValueLen >= len {
                            // SAFETY: pValue holds ulValueLen >= len bytes (caller's guarantee).
                            unsafe {
                                std::ptr::copy_nonoverlapping(
                                    bytes.as_ptr(),
                                    a.pValue as *mut u8,
                                    bytes.len(),
                                )
                            };
                            a.ulValueLen = len;
                        } else {
                            a.ulValueLen = UNAVAILABLE;
                            rv = CKR_BUFFER_TOO_SMALL;
                        }
                    }
                }
            }
            if rv == CKR_OK {
                Ok(())
            } else {
                Err(rv)
            }
        })
    })
}

#[no_mangle]
unsafe extern "C" fn C_FindObjectsInit(
    h: CK_SESSION_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    entry("C_FindObjectsInit", || {
        with_module(|m| {
            m.check_session(h)?;
            // SAFETY: pTemplate is NULL (with 0) or holds ulCount valid attributes.
            let t = unsafe { template(attrs, count) }?;
            m.find_init(h, &t)
        })
    })
}

#[no_mangle]
unsafe extern "C" fn C_FindObjects(
    h: CK_SESSION_HANDLE,
    objects: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    count: *mut CK_ULONG,
) -> CK_RV {
    entry("C_FindObjects", || {
        with_module(|m| {
            m.check_session(h)?;
            // SAFETY: pulObjectCount points to a CK_ULONG.
            let count = unsafe { out(count) }?;
            if objects.is_null() && max > 0 {
                return Err(CKR_ARGUMENTS_BAD);
            }
            let max = usize::try_from(max).unwrap_or(usize::MAX);
            let found = m.find(h, max)?;
            if !found.is_empty() {
                // SAFETY: phObject holds ulMaxObjectCount >= found.len() handles.
                unsafe { std::ptr::copy_nonoverlapping(found.as_ptr(), objects, found.len()) };
            }
            *count = found.len() as CK_ULONG;
            Ok(())
        })
    })
}

#[no_mangle]
unsafe extern "C" fn C_FindObjectsFinal(h: CK_SESSION_HANDLE) -> CK_RV {
    entry("C_FindObjectsFinal", || with_module(|m| m.find_final(h)))
}

// ---- signing ---------------------------------------------------------------------------------

#[no_mangle]
unsafe extern "C" fn C_SignInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_SignInit", || {
        with_module(|m| {
            m.check_session(h)?;
            // SAFETY: pMechanism is NULL or a valid CK_MECHANISM.
            let mech = unsafe { mechanism(mech) }?;
            log::line(&format!("C_SignInit mechanism {:#x}", mech.kind));
            m.sign_init(h, &mech, key)
        })
    })
}

/// The output half of `C_Sign` / `C_SignFinal`: a NULL buffer or a short one leaves the
/// operation active (PKCS#11 2.40 §5.2).
///
/// # Safety
/// `sig` is NULL or holds `*len` bytes.
unsafe fn sign_out(
    m: &mut Module,
    h: CK_SESSION_HANDLE,
    data: Option<&[u8]>,
    sig: *mut CK_BYTE,
    len: &mut CK_ULONG,
) -> R {
    let need = m.sign_len(h)? as CK_ULONG;
    if sig.is_null() {
        *len = need;
        return Ok(());
    }
    if *len < need {
        *len = need;
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    let s = fit_signature(m.sign(h, data)?, need as usize)?;
    // SAFETY: `sig` holds `*len >= need == s.len()` bytes.
    unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), sig, s.len()) };
    *len = s.len() as CK_ULONG;
    Ok(())
}

/// The card's signature as exactly `need` bytes (the modulus length): a shorter one (leading
/// zero bytes dropped by the card) is left-padded with zeros, as RSA signatures are fixed-size
/// (RFC 8017 §5.2.1, I2OSP to k octets); a longer one is not a signature of this key and is
/// refused, never cut; so is an empty one.
fn fit_signature(s: Vec<u8>, need: usize) -> Result<Vec<u8>, CK_RV> {
    if s.is_empty() {
        return Err(CKR_FUNCTION_FAILED);
    }
    match s.len().cmp(&need) {
        std::cmp::Ordering::Equal => Ok(s),
        std::cmp::Ordering::Greater => Err(CKR_FUNCTION_FAILED),
        std::cmp::Ordering::Less => {
            let mut out = vec![0u8; need - s.len()];
            out.extend_from_slice(&s);
            Ok(out)
        }
    }
}

#[no_mangle]
unsafe extern "C" fn C_Sign(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    entry("C_Sign", || {
        with_module(|m| {
            m.check_session(h)?;
            // SAFETY: pulSignatureLen points to a CK_ULONG, pData holds ulDataLen bytes.
            let checked = unsafe { out(sig_len) }
                .and_then(|l| unsafe { input(data, data_len) }.map(|d| (l, d)));
            let (len, data) = match checked {
                Ok(v) => v,
                Err(e) => {
                    m.sign_abort(h);
                    return Err(e);
                }
            };
            // SAFETY: pSignature is NULL or holds *pulSignatureLen bytes.
            unsafe { sign_out(m, h, Some(data), sig, len) }
        })
    })
}

#[no_mangle]
unsafe extern "C" fn C_SignUpdate(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    entry("C_SignUpdate", || {
        with_module(|m| {
            m.check_session(h)?;
            // SAFETY: pPart holds ulPartLen bytes.
            match unsafe { input(data, len) } {
                Ok(d) => m.sign_update(h, d),
                Err(e) => {
                    m.sign_abort(h);
                    Err(e)
                }
            }
        })
    })
}

#[no_mangle]
unsafe extern "C" fn C_SignFinal(
    h: CK_SESSION_HANDLE,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    entry("C_SignFinal", || {
        with_module(|m| {
            m.check_session(h)?;
            // SAFETY: pulSignatureLen points to a CK_ULONG.
            let len = match unsafe { out(sig_len) } {
                Ok(l) => l,
                Err(e) => {
                    m.sign_abort(h);
                    return Err(e);
                }
            };
            // SAFETY: pSignature is NULL or holds *pulSignatureLen bytes.
            unsafe { sign_out(m, h, None, sig, len) }
        })
    })
}

// ---- everything else: not supported ------------------------------------------------------------

/// Functions a TS-CNS token does not offer: after the initialisation check they answer
/// `CKR_FUNCTION_NOT_SUPPORTED` (PKCS#11 2.40 §5.1), whatever their arguments.
macro_rules! not_supported {
    ($($name:ident($($arg:ty),*);)*) => {
        $(
            #[no_mangle]
            unsafe extern "C" fn $name($(_: $arg),*) -> CK_RV {
                entry(stringify!($name), || {
                    with_module(|_| Err(CKR_FUNCTION_NOT_SUPPORTED))
                })
            }
        )*
    };
}

not_supported! {
    C_GetOperationState(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG);
    C_SetOperationState(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE);
    C_CreateObject(CK_SESSION_HANDLE, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_OBJECT_HANDLE);
    C_CopyObject(CK_SESSION_HANDLE, CK_OBJECT_HANDLE, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_OBJECT_HANDLE);
    C_DestroyObject(CK_SESSION_HANDLE, CK_OBJECT_HANDLE);
    C_SetAttributeValue(CK_SESSION_HANDLE, CK_OBJECT_HANDLE, *mut CK_ATTRIBUTE, CK_ULONG);
    C_EncryptInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE);
    C_Encrypt(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_EncryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_EncryptFinal(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG);
    C_DecryptInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE);
    C_Decrypt(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DecryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DecryptFinal(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG);
    C_DigestInit(CK_SESSION_HANDLE, *mut CK_MECHANISM);
    C_Digest(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DigestUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG);
    C_DigestKey(CK_SESSION_HANDLE, CK_OBJECT_HANDLE);
    C_DigestFinal(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG);
    C_SignRecoverInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE);
    C_SignRecover(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_VerifyInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE);
    C_Verify(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, CK_ULONG);
    C_VerifyUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG);
    C_VerifyFinal(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG);
    C_VerifyRecoverInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE);
    C_VerifyRecover(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DigestEncryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DecryptDigestUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_SignEncryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DecryptVerifyUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_GenerateKey(CK_SESSION_HANDLE, *mut CK_MECHANISM, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_OBJECT_HANDLE);
    C_GenerateKeyPair(CK_SESSION_HANDLE, *mut CK_MECHANISM, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_OBJECT_HANDLE, *mut CK_OBJECT_HANDLE);
    C_WrapKey(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE, *mut CK_BYTE, *mut CK_ULONG);
    C_UnwrapKey(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_OBJECT_HANDLE);
    C_DeriveKey(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_OBJECT_HANDLE);
    C_WaitForSlotEvent(CK_FLAGS, *mut CK_SLOT_ID, *mut c_void);
}

/// The card's generator is not used (the token has no `CKF_RNG`): seeding is refused with the
/// code PKCS#11 2.40 §5.15 names.
#[no_mangle]
unsafe extern "C" fn C_SeedRandom(h: CK_SESSION_HANDLE, _: *mut CK_BYTE, _: CK_ULONG) -> CK_RV {
    entry("C_SeedRandom", || {
        with_module(|m| {
            m.check_session(h)?;
            Err(CKR_RANDOM_SEED_NOT_SUPPORTED)
        })
    })
}

/// Random bytes from the operating system's generator (`getrandom`), for programs that ask
/// any token for them (pkcs11-tool --test does); the card is not involved.
#[no_mangle]
unsafe extern "C" fn C_GenerateRandom(
    h: CK_SESSION_HANDLE,
    buf: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    entry("C_GenerateRandom", || {
        with_module(|m| {
            m.check_session(h)?;
            let n = usize::try_from(len).map_err(|_| CKR_ARGUMENTS_BAD)?;
            if n == 0 {
                return Ok(());
            }
            if buf.is_null() || n > isize::MAX as usize {
                return Err(CKR_ARGUMENTS_BAD);
            }
            // SAFETY: pRandomData holds ulRandomLen bytes (caller's guarantee), non-NULL.
            let out = unsafe { std::slice::from_raw_parts_mut(buf, n) };
            getrandom::getrandom(out).map_err(|_| CKR_FUNCTION_FAILED)
        })
    })
}

/// Legacy functions of parallel sessions (PKCS#11 2.40 §5.17): `CKR_FUNCTION_NOT_PARALLEL`.
macro_rules! not_parallel {
    ($($name:ident),*) => {
        $(
            #[no_mangle]
            unsafe extern "C" fn $name(_: CK_SESSION_HANDLE) -> CK_RV {
                entry(stringify!($name), || with_module(|_| Err(CKR_FUNCTION_NOT_PARALLEL)))
            }
        )*
    };
}

not_parallel!(C_GetFunctionStatus, C_CancelFunction);

/// The function table (PKCS#11 2.40 §5.1 `CK_FUNCTION_LIST`).
static FUNCTION_LIST: CK_FUNCTION_LIST = CK_FUNCTION_LIST {
    version: VERSION_2_40,
    C_Initialize: Some(C_Initialize),
    C_Finalize: Some(C_Finalize),
    C_GetInfo: Some(C_GetInfo),
    C_GetFunctionList: Some(C_GetFunctionList),
    C_GetSlotList: Some(C_GetSlotList),
    C_GetSlotInfo: Some(C_GetSlotInfo),
    C_GetTokenInfo: Some(C_GetTokenInfo),
    C_GetMechanismList: Some(C_GetMechanismList),
    C_GetMechanismInfo: Some(C_GetMechanismInfo),
    C_InitToken: Some(C_InitToken),
    C_InitPIN: Some(C_InitPIN),
    C_SetPIN: Some(C_SetPIN),
    C_OpenSession: Some(C_OpenSession),
    C_CloseSession: Some(C_CloseSession),
    C_CloseAllSessions: Some(C_CloseAllSessions),
    C_GetSessionInfo: Some(C_GetSessionInfo),
    C_GetOperationState: Some(C_GetOperationState),
    C_SetOperationState: Some(C_SetOperationState),
    C_Login: Some(C_Login),
    C_Logout: Some(C_Logout),
    C_CreateObject: Some(C_CreateObject),
    C_CopyObject: Some(C_CopyObject),
    C_DestroyObject: Some(C_DestroyObject),
    C_GetObjectSize: Some(C_GetObjectSize),
    C_GetAttributeValue: Some(C_GetAttributeValue),
    C_SetAttributeValue: Some(C_SetAttributeValue),
    C_FindObjectsInit: Some(C_FindObjectsInit),
    C_FindObjects: Some(C_FindObjects),
    C_FindObjectsFinal: Some(C_FindObjectsFinal),
    C_EncryptInit: Some(C_EncryptInit),
    C_Encrypt: Some(C_Encrypt),
    C_EncryptUpdate: Some(C_EncryptUpdate),
    C_EncryptFinal: Some(C_EncryptFinal),
    C_DecryptInit: Some(C_DecryptInit),
    C_Decrypt: Some(C_Decrypt),
    C_DecryptUpdate: Some(C_DecryptUpdate),
    C_DecryptFinal: Some(C_DecryptFinal),
    C_DigestInit: Some(C_DigestInit),
    C_Digest: Some(C_Digest),
    C_DigestUpdate: Some(C_DigestUpdate),
    C_DigestKey: Some(C_DigestKey),
    C_DigestFinal: Some(C_DigestFinal),
    C_SignInit: Some(C_SignInit),
    C_Sign: Some(C_Sign),
    C_SignUpdate: Some(C_SignUpdate),
    C_SignFinal: Some(C_SignFinal),
    C_SignRecoverInit: Some(C_SignRecoverInit),
    C_SignRecover: Some(C_SignRecover),
    C_VerifyInit: Some(C_VerifyInit),
    C_Verify: Some(C_Verify),
    C_VerifyUpdate: Some(C_VerifyUpdate),
    C_VerifyFinal: Some(C_VerifyFinal),
    C_VerifyRecoverInit: Some(C_VerifyRecoverInit),
    C_VerifyRecover: Some(C_VerifyRecover),
    C_DigestEncryptUpdate: Some(C_DigestEncryptUpdate),
    C_DecryptDigestUpdate: Some(C_DecryptDigestUpdate),
    C_SignEncryptUpdate: Some(C_SignEncryptUpdate),
    C_DecryptVerifyUpdate: Some(C_DecryptVerifyUpdate),
    C_GenerateKey: Some(C_GenerateKey),
    C_GenerateKeyPair: Some(C_GenerateKeyPair),
    C_WrapKey: Some(C_WrapKey),
    C_UnwrapKey: Some(C_UnwrapKey),
    C_DeriveKey: Some(C_DeriveKey),
    C_SeedRandom: Some(C_SeedRandom),
    C_GenerateRandom: Some(C_GenerateRandom),
    C_GetFunctionStatus: Some(C_GetFunctionStatus),
    C_CancelFunction: Some(C_CancelFunction),
    C_WaitForSlotEvent: Some(C_WaitForSlotEvent),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_exactly_the_modulus_length() {
        // Before: a longer answer was cut to the buffer, a shorter one passed short.
        assert_eq!(fit_signature(vec![1, 2, 3], 3), Ok(vec![1, 2, 3]));
        assert_eq!(fit_signature(vec![1, 2], 4), Ok(vec![0, 0, 1, 2]));
        assert_eq!(
            fit_signature(vec![1, 2, 3, 4, 5], 4),
            Err(CKR_FUNCTION_FAILED)
        );
        assert_eq!(fit_signature(Vec::new(), 2), Err(CKR_FUNCTION_FAILED));
    }

    #[test]
    fn text_fields_are_blank_padded_and_cut_on_characters() {
        assert_eq!(&padded::<8>("abc"), b"abc     ");
        assert_eq!(&padded::<4>("abcdef"), b"abcd");
        // "è" is two bytes: never cut in the middle.
        assert_eq!(&padded::<4>("abcè"), b"abc ");
    }
}
