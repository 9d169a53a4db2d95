//! `--simulated [PROFILE]`: the in-process tscns-sim card, a test bed linked only with the `demo`
//! feature (on by default for the binary).

/// The simulated card of `profile` (a tscns-sim built-in profile name or a profile file).
#[cfg(feature = "demo")]
pub fn transport(profile: &str) -> Result<Box<dyn tscns_apdu::Transport + Send>, String> {
    let profile = tscns_sim::Profile::builtin_or_file(profile).map_err(|e| e.to_string())?;
    let sim = tscns_sim::SimCard::new(&profile).map_err(|e| e.to_string())?;
    Ok(Box::new(sim))
}

/// Without the `demo` feature there is no simulated card: the error says so.
#[cfg(not(feature = "demo"))]
pub fn transport(_profile: &str) -> Result<Box<dyn tscns_apdu::Transport + Send>, String> {
    Err(
        "this tscns was built without the `demo` feature: --simulated is not available; \
         use a card in a reader (--reader) or a PKCS#11 module (--pkcs11)"
            .into(),
    )
}
