//! Where a login may send the browser back to: same-origin paths only.

/// `p` if it is a path on this site that is safe to put in `Location`: it starts with one `/`,
/// holds only printable ASCII without spaces (no tab, CR, LF or other control character, which
/// browsers strip so that `/\t/evil.example` becomes `//evil.example`), no backslash (read as `/`),
/// and resolves against this origin to this origin.
pub fn same_origin_path(p: &str) -> Option<&str> {
    if !p.starts_with('/')
        || p.starts_with("//")
        || p.len() > 2048
        || !p.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
    {
        return None;
    }
    let base = url::Url::parse("https://origin.invalid/").ok()?;
    let joined = base.join(p).ok()?;
    (joined.origin() == base.origin()).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_paths_are_return_targets() {
        for good in [
            "/",
            "/area-riservata",
            "/a/b?c=d&e=%2F%2Fx",
            "/%09/evil.example",
            "/a//b",
        ] {
            assert_eq!(same_origin_path(good), Some(good), "{good:?}");
        }
        for bad in [
            "",
            "evil.example",
            "https://evil.example/",
            "//evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "/\x0b/evil.example",
            "/\x00/evil.example",
            "/\x7f/evil.example",
            "/ /evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "/\\/evil.example",
            "/\u{3000}/evil.example",
            "/\u{2028}x",
            "///evil.example",
            "javascript:alert(1)",
            "/\u{ff0f}evil.example",
        ] {
            assert_eq!(same_origin_path(bad), None, "{bad:?}");
        }
        assert_eq!(same_origin_path(&format!("/{}", "a".repeat(3000))), None);
    }

    proptest::proptest! {
        /// Whatever a `return` parameter holds, what is accepted stays on this origin.
        #[test]
        fn accepted_paths_stay_on_this_origin(p in "\\PC{0,40}", q in "[/\\\\\t\n .:%a-z]{0,12}") {
            for cand in [p.clone(), format!("/{q}{p}"), format!("{q}{p}")] {
                if let Some(ok) = same_origin_path(&cand) {
                    let base = url::Url::parse("https://origin.invalid/").unwrap();
                    let j = base.join(ok).unwrap();
                    proptest::prop_assert_eq!(j.host_str(), Some("origin.invalid"));
                    proptest::prop_assert!(!ok.bytes().any(|b| b.is_ascii_control()));
                }
            }
        }
    }
}
