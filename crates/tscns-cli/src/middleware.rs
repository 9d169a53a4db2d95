//! `tscns middleware install|status|uninstall`: registers the TS-CNS PKCS#11 module
//! (`libtscns_pkcs11_module.so`, crate tscns-pkcs11-module) where browsers and other programs look
//! for one: a p11-kit module file, the user's NSS database `~/.pki/nssdb` (Chromium), and every
//! Firefox profile. The "Area Download" step of the seed in one command.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// The name the module is registered under in NSS databases and p11-kit.
pub const MODULE_NAME: &str = "TS-CNS";
/// The p11-kit module file's name.
const P11KIT_FILE: &str = "tscns.module";
/// The module's file name.
const LIB: &str = "libtscns_pkcs11_module.so";

/// `tscns middleware ...`.
#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Register the module. With no flag: everywhere this machine has (p11-kit always; Chromium's
    /// NSS database and Firefox profiles when they exist).
    Install(Targets),
    /// Where the module is registered, and which cards it sees.
    Status(Common),
    /// Remove the module from every place `install` writes to.
    Uninstall(Common),
}

/// Options of every `middleware` command.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// The module file (default: next to `tscns`, then the system's PKCS#11 directories).
    #[arg(long, value_name = "FILE")]
    pub module: Option<PathBuf>,
    /// The p11-kit module file for the whole system (/etc/pkcs11/modules) instead of the user's.
    #[arg(long)]
    pub system: bool,
}

/// `install` targets.
#[derive(Debug, clap::Args)]
pub struct Targets {
    /// Every Firefox profile (~/.mozilla/firefox/*).
    #[arg(long)]
    pub firefox: bool,
    /// The user's NSS database ~/.pki/nssdb (Chromium, and other NSS programs).
    #[arg(long)]
    pub chromium: bool,
    /// A p11-kit module file (~/.config/pkcs11/modules, or /etc/pkcs11/modules with --system).
    #[arg(long = "p11-kit")]
    pub p11_kit: bool,
    #[command(flatten)]
    pub common: Common,
}

type Fail = String;

/// Runs `tscns middleware`.
pub fn run(cmd: Cmd) -> ExitCode {
    let r = match cmd {
        Cmd::Install(t) => install(&t),
        Cmd::Status(c) => status(&c),
        Cmd::Uninstall(c) => uninstall(&c),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tscns middleware: {e}");
            ExitCode::from(1)
        }
    }
}

fn home() -> Result<PathBuf, Fail> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or_else(|| "HOME is not set: cannot find the user's browser profiles".to_owned())
}

/// The module: `--module`, else next to this program, else the system's PKCS#11 directories.
fn module_path(c: &Common) -> Result<PathBuf, Fail> {
    if let Some(m) = &c.module {
        if !m.is_file() {
            return Err(format!("{} does not exist", m.display()));
        }
        return std::fs::canonicalize(m).map_err(|e| format!("{}: {e}", m.display()));
    }
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join(LIB));
        candidates.push(dir.join("../lib").join(LIB));
    }
    for d in [
        "/usr/lib/x86_64-linux-gnu/pkcs11",
        "/usr/lib/aarch64-linux-gnu/pkcs11",
        "/usr/lib/pkcs11",
        "/usr/local/lib",
        "/usr/local/lib/pkcs11",
    ] {
        candidates.push(Path::new(d).join(LIB));
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
        .ok_or_else(|| {
            format!(
                "{LIB} not found (looked in {}): build it with `cargo build --release -p \
                 tscns-pkcs11-module` and pass --module",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

fn p11kit_file(c: &Common) -> Result<PathBuf, Fail> {
    Ok(if c.system {
        PathBuf::from("/etc/pkcs11/modules").join(P11KIT_FILE)
    } else {
        home()?.join(".config/pkcs11/modules").join(P11KIT_FILE)
    })
}

fn chromium_db() -> Result<PathBuf, Fail> {
    Ok(home()?.join(".pki/nssdb"))
}

/// Firefox profile directories: those named in profiles.ini, and any directory with prefs.js.
fn firefox_profiles() -> Result<Vec<PathBuf>, Fail> {
    let base = home()?.join(".mozilla/firefox");
    let mut out = Vec::new();
    if let Ok(ini) = std::fs::read_to_string(base.join("profiles.ini")) {
        let mut relative = true;
        let mut path = None;
        let flush = |relative: bool, path: &mut Option<String>, out: &mut Vec<PathBuf>| {
            if let Some(p) = path.take() {
                let d = if relative {
                    base.join(&p)
                } else {
                    PathBuf::from(&p)
                };
                if d.is_dir() && !out.contains(&d) {
                    out.push(d);
                }
            }
        };
        for line in ini.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                flush(relative, &mut path, &mut out);
                relative = true;
            } else if let Some(v) = line.strip_prefix("Path=") {
                path = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("IsRelative=") {
                relative = v != "0";
            }
        }
        flush(relative, &mut path, &mut out);
    }
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            let d = e.path();
            if d.join("prefs.js").is_file() && !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Runs an NSS tool (bounded by the tool itself; they never prompt with these options).
fn nss_tool(program: &str, args: &[&str]) -> Result<String, Fail> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!("cannot run {program} ({e}): install it with `apt-get install libnss3-tools`")
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{program} {}: {}", args.join(" "), text.trim()))
    }
}

fn db_arg(dir: &Path) -> String {
    format!("sql:{}", dir.display())
}

/// Whether the NSS database in `dir` lists our module.
fn nss_has(dir: &Path) -> bool {
    if !dir.join("pkcs11.txt").is_file() {
        return false;
    }
    nss_tool("modutil", &["-dbdir", &db_arg(dir), "-list"])
        .map(|t| {
            t.contains(&format!("Name: {MODULE_NAME}")) || t.contains(&format!(". {MODULE_NAME}"))
        })
        .unwrap_or(false)
}

fn nss_add(dir: &Path, module: &Path) -> Result<(), Fail> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !dir.join("cert9.db").is_file() {
        nss_tool("certutil", &["-N", "-d", &db_arg(dir), "--empty-password"])?;
    }
    if nss_has(dir) {
        nss_tool(
            "modutil",
            &["-dbdir", &db_arg(dir), "-delete", MODULE_NAME, "-force"],
        )?;
    }
    let lib = module.display().to_string();
    nss_tool(
        "modutil",
        &[
            "-dbdir",
            &db_arg(dir),
            "-add",
            MODULE_NAME,
            "-libfile",
            &lib,
            "-force",
        ],
    )?;
    Ok(())
}

fn nss_remove(dir: &Path) -> Result<bool, Fail> {
    if !nss_has(dir) {
        return Ok(false);
    }
    nss_tool(
        "modutil",
        &["-dbdir", &db_arg(dir), "-delete", MODULE_NAME, "-force"],
    )?;
    Ok(true)
}

fn install(t: &Targets) -> Result<(), Fail> {
    let module = module_path(&t.common)?;
    let all = !(t.firefox || t.chromium || t.p11_kit);
    let mut done = 0;
    if t.p11_kit || all {
        let f = p11kit_file(&t.common)?;
        if let Some(d) = f.parent() {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        // p11-kit's module configuration format (pkcs11.conf(5)).
        std::fs::write(&f, format!("module: {}\n", module.display()))
            .map_err(|e| format!("{}: {e}", f.display()))?;
        say!("p11-kit: {}", f.display());
        done += 1;
    }
    if t.chromium || (all && (chromium_db()?.is_dir() || which("chromium"))) {
        let db = chromium_db()?;
        nss_add(&db, &module)?;
        say!("Chromium (NSS): {}", db.display());
        done += 1;
    }
    if t.firefox || all {
        let profiles = firefox_profiles()?;
        if profiles.is_empty() && t.firefox {
            return Err("no Firefox profile found under ~/.mozilla/firefox: start Firefox once, then run this again".into());
        }
        for p in profiles {
            nss_add(&p, &module)?;
            say!("Firefox: {}", p.display());
            done += 1;
        }
    }
    say!(
        "module {} registered in {done} place{}",
        module.display(),
        if done == 1 { "" } else { "s" }
    );
    Ok(())
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

fn status(c: &Common) -> Result<(), Fail> {
    let f = p11kit_file(c)?;
    let p11 = std::fs::read_to_string(&f).ok();
    say!(
        "p11-kit {}: {}",
        f.display(),
        match &p11 {
            Some(t) => format!("registered ({})", t.trim()),
            None => "not registered".into(),
        }
    );
    let db = chromium_db()?;
    say!(
        "Chromium (NSS) {}: {}",
        db.display(),
        if nss_has(&db) {
            "registered"
        } else {
            "not registered"
        }
    );
    for p in firefox_profiles()? {
        say!(
            "Firefox {}: {}",
            p.display(),
            if nss_has(&p) {
                "registered"
            } else {
                "not registered"
            }
        );
    }
    let module = match module_path(c) {
        Ok(m) => m,
        Err(e) => {
            say!("module: {e}");
            return Ok(());
        }
    };
    say!("module: {}", module.display());
    let m = tscns_pkcs11::Module::open(&module).map_err(|e| e.to_string())?;
    let tokens = m.tokens().map_err(|e| e.to_string())?;
    if tokens.is_empty() {
        say!("cards: none (insert the TS-CNS in a reader)");
    }
    for t in tokens {
        say!(
            "card {} of {} ({}){}",
            t.serial,
            t.label,
            t.model,
            if t.pin_locked { ", PIN blocked" } else { "" }
        );
    }
    Ok(())
}

fn uninstall(c: &Common) -> Result<(), Fail> {
    let mut removed = 0;
    let f = p11kit_file(c)?;
    if f.is_file() {
        std::fs::remove_file(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        say!("removed {}", f.display());
        removed += 1;
    }
    let db = chromium_db()?;
    if nss_remove(&db)? {
        say!("removed from {}", db.display());
        removed += 1;
    }
    for p in firefox_profiles()? {
        if nss_remove(&p)? {
            say!("removed from {}", p.display());
            removed += 1;
        }
    }
    say!(
        "module unregistered from {removed} place{}",
        if removed == 1 { "" } else { "s" }
    );
    Ok(())
}
