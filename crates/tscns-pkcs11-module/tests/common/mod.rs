//! Shared by the system tests: the built module, a tscns-sim card in vpcd reader 1 under the
//! reader lock, external programs run with a deadline, scratch directories.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tscns_apdu::testing::{ReaderLock, PCSCD_HOWTO, VPCD_PORT_1, VPCD_READER_1};
use tscns_sim::{serve_vpcd, Profile, SimCard, SimHandle, VpcdServer};

/// These tests take vpcd reader 1 (as tscns-sim's OpenSC tests do); the module is told to see
/// only that reader, so a card another crate's test put in reader 0 is left alone.
pub const PORT: u16 = VPCD_PORT_1;
/// Its PC/SC name.
pub const READER: &str = VPCD_READER_1;

/// An Assuan pinentry stub for the tests: answers OK to everything, and to GETPIN what the file
/// `mode` next to it says (`cancel`, or the PIN to give); it appends every SETDESC line to
/// `prompts` and a line per GETPIN to `calls`.
pub const PINENTRY_STUB: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "OK Pleased to meet you"
while IFS= read -r line; do
  case "$line" in
    SETDESC*) printf '%s\n' "$line" >> "$dir/prompts"; echo OK ;;
    GETPIN)
      echo x >> "$dir/calls"
      mode=$(cat "$dir/mode")
      if [ "$mode" = cancel ]; then echo "ERR 83886179 Operation cancelled <Pinentry>"
      else echo "D $mode"; echo OK; fi ;;
    BYE) echo "OK closing connection"; exit 0 ;;
    *) echo OK ;;
  esac
done
"#;

/// Every built-in maker profile, 1024 and 2048 bits.
pub const PROFILES: [&str; 10] = [
    "default",
    "stincard-1024",
    "athena-1024",
    "idemia-v2-1024",
    "idemia-v2-2048",
    "idemia2021-2048",
    "nfc-bare-2048",
    "st2021-2048",
    "st2022-nfc-2048",
    "actalis-ace2025-2048",
];

/// The module cargo built next to this test binary (`target/<profile>/libtscns_pkcs11_module.so`).
pub fn module_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    for dir in [deps, deps.parent().unwrap()] {
        let p = dir.join("libtscns_pkcs11_module.so");
        if p.exists() {
            return p;
        }
    }
    panic!(
        "libtscns_pkcs11_module.so not found next to {}: build it with `cargo build -p tscns-pkcs11-module`",
        exe.display()
    );
}

/// A simulated card in the vpcd reader; taken out (and the reader seen empty) when dropped.
pub struct Plugged {
    server: Option<VpcdServer>,
    pub handle: SimHandle,
    pub profile: Profile,
    _lock: ReaderLock,
}

impl Plugged {
    pub fn new(name: &str) -> Plugged {
        Plugged::with_profile(Profile::builtin(name).unwrap())
    }

    /// A card made from `profile` (a built-in one changed by the test, say) in the vpcd reader.
    pub fn with_profile(profile: Profile) -> Plugged {
        assert!(
            Path::new("/run/pcscd/pcscd.comm").exists(),
            "pcscd is not running: {PCSCD_HOWTO}"
        );
        let lock = ReaderLock::acquire(PORT, Duration::from_secs(600))
            .unwrap_or_else(|e| panic!("cannot lock vpcd reader {READER}: {e}"));
        let _ = tscns_apdu::pcsc::wait_for_card(READER, false, Duration::from_secs(10));
        let card = SimCard::new(&profile).unwrap();
        let handle = card.handle();
        let server = serve_vpcd(card, PORT).unwrap_or_else(|e| panic!("{e}\n{PCSCD_HOWTO}"));
        assert!(
            server.wait_ready(Duration::from_secs(10)),
            "vpcd card not ready: {PCSCD_HOWTO}"
        );
        tscns_apdu::pcsc::wait_for_card(READER, true, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("the card did not show up in {READER}: {e}"));
        Plugged {
            server: Some(server),
            handle,
            profile,
            _lock: lock,
        }
    }

    /// Pulls the card out (the lock stays held until drop).
    pub fn remove(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
        let _ = tscns_apdu::pcsc::wait_for_card(READER, false, Duration::from_secs(10));
    }
}

impl Drop for Plugged {
    fn drop(&mut self) {
        self.remove();
    }
}

/// An external program's result.
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn all(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs `program` with `env`, a deadline, and the test failing with a hint when it is missing.
pub fn run_env(program: &str, args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Output {
    run_in(None, program, args, env, timeout)
}

/// [`run_env`] in the working directory `cwd` (`None`: this process's).
pub fn run_in(
    cwd: Option<&Path>,
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> Output {
    let mut cmd = Command::new(program);
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!("cannot run {program}: {e} (Debian packages opensc, openssl, libnss3-tools, gnutls-bin; or run scripts/test)")
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let code = loop {
        match child.try_wait().unwrap() {
            Some(st) => break st.code(),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{program} {args:?} did not finish within {timeout:?} and was killed");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    Output {
        code,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// A fresh scratch directory, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("tscns-p11m-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn str(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("TSCNS_TEST_KEEP").is_some() {
            eprintln!("TSCNS_TEST_KEEP: kept {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes [`PINENTRY_STUB`] as `DIR/pinentry-stub` (executable) answering `mode`; returns its path.
pub fn pinentry_stub(dir: &Scratch, mode: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let stub = dir.path("pinentry-stub");
    std::fs::write(&stub, PINENTRY_STUB).unwrap();
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.path("mode"), mode).unwrap();
    stub
}

/// How many times the stub was asked for a PIN.
pub fn pinentry_calls(dir: &Scratch) -> usize {
    std::fs::read_to_string(dir.path("calls"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// The cargo target directory this test binary was built in (`target/<profile>/deps/..`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

/// The module loaded in this process through cryptoki, initialised, and the slot of the vpcd
/// reader's token (`None` when that reader shows no token).
pub fn module_in_process() -> (cryptoki::context::Pkcs11, Option<cryptoki::slot::Slot>) {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    let pkcs11 = Pkcs11::new(module_path()).unwrap();
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = pkcs11
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| {
            pkcs11
                .get_slot_info(*s)
                .is_ok_and(|i| i.slot_description().contains(READER))
        });
    (pkcs11, slot)
}
