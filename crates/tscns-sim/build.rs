//! Lists `profiles/*.toml` as the built-in profiles (`BUILTIN_PROFILES`): `default` first, then
//! the others by name. Adding a generation's profile is adding its file.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dir = manifest.join("profiles");
    println!("cargo::rerun-if-changed=profiles");
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".toml").map(str::to_owned)
            })
            .collect(),
        Err(e) => panic!("cannot list {}: {e}", dir.display()),
    };
    names.sort_by(|a, b| (a != "default", a).cmp(&(b != "default", b)));
    let mut out = String::from("&[\n");
    for name in &names {
        out.push_str(&format!(
            "    ({name:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/profiles/{name}.toml\"))),\n"
        ));
    }
    out.push(']');
    let target =
        PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("builtin_profiles.rs");
    if let Err(e) = std::fs::write(&target, out) {
        panic!("cannot write {}: {e}", target.display());
    }
}
