//! The command line's own advice on library errors: the libraries name no `tscns` flags, so the
//! commands add the flag that fixes the problem here.

/// `message` (a library error's text) with the `tscns` flag that addresses it appended, if any.
pub fn with_flag_hint(message: impl std::fmt::Display) -> String {
    let message = message.to_string();
    let hint =
        if message.contains("is not trusted") || message.contains("no trusted CA certificates") {
            Some("pass the CA that issued the server's certificate with --ca FILE")
        } else if message.contains("does not speak TLS 1.3, which was required") {
            Some("--tls 1.2 sends the certificate anyway, readable by anyone on the network path")
        } else if message.contains("the PIN is blocked: unblock it with the PUK") {
            Some("tscns card pin unblock")
        } else if message.contains("use the card directly, without PKCS#11") {
            Some("--reader uses the card directly")
        } else if message.contains("not an allowed Cohesion host") {
            Some("if it is a Cohesion server you trust, add it with --cohesion-host HOST")
        } else {
            None
        };
    match hint {
        Some(h) if !message.contains(h) => format!("{message} ({h})"),
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_flag_once() {
        let m = with_flag_hint("the server localhost is not trusted: unknown issuer");
        assert!(m.ends_with("with --ca FILE)"), "{m}");
        assert_eq!(with_flag_hint(&m), m);
        assert_eq!(with_flag_hint("wrong PIN"), "wrong PIN");
    }
}
