//! The page-specific rules of the citizen's login, all in one place.
//!
//! Cohesion's pages are HTML for people; a program has to recognise three things on them. These
//! rules are the only place that knows what the pages look like; everything else in the flow is
//! protocol (redirects, TLS, the form POST). When Cohesion changes its pages, change this file.
//!
//! 1. **The smart-card choice** ([`smart_card_link`]): on the login page, the link or form that
//!    starts the TS-CNS login. Matched, in order: an element with id `login-smartcard` (the
//!    emulator); an `<a>` whose `href` path ends in `SmartCard.aspx` or contains `smartcard`/`cns`
//!    (case-insensitive); an `<a>` or button whose text mentions "Smart Card", "CNS" or "TS-CNS".
//! 2. **The auto-posting callback** ([`auto_post_form`]): a `<form method="post">` holding an
//!    input named `auth` (Cohesion's documented callback to `url_validate`). All its named inputs
//!    are posted to its `action`.
//! 3. **An error page** ([`error_text`]): an element with id `errore` or class `error`/`errore`,
//!    whose text explains why Cohesion refused.
//! 4. **The WAYF chooser** ([`cohesion_idp_link`]): in SAML mode without `entityID`, the page that
//!    lists the identity providers; the citizen's card is Cohesion's own IdP. Matched: an element
//!    with id `idp-cohesion` (the emulator); an `<a>` whose `href` carries
//!    `entityID=cohesion…:idp`; an `<a>` whose text starts with "Cohesion".

use scraper::{Html, Selector};

use crate::error::{Error, Result};

fn sel(s: &str) -> Result<Selector> {
    Selector::parse(s).map_err(|e| Error::Flow(format!("internal selector {s:?}: {e}")))
}

/// Rule 1: the URL (possibly relative) that starts the smart-card login, if the page offers one.
pub fn smart_card_link(html: &str) -> Result<Option<String>> {
    let doc = Html::parse_document(html);
    if let Some(a) = doc.select(&sel("a#login-smartcard")?).next() {
        return Ok(a.value().attr("href").map(str::to_owned));
    }
    for a in doc.select(&sel("a[href]")?) {
        let href = a.value().attr("href").unwrap_or_default();
        let path = href
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if path.ends_with("smartcard.aspx") || path.contains("smartcard") || path.contains("/cns") {
            return Ok(Some(href.to_owned()));
        }
    }
    for a in doc.select(&sel("a[href]")?) {
        let text: String = a.text().collect::<String>().to_ascii_lowercase();
        if text.contains("smart card") || text.contains("ts-cns") || text.contains(" cns") {
            return Ok(a.value().attr("href").map(str::to_owned));
        }
    }
    Ok(None)
}

/// A form to post: its action (possibly relative) and its named fields.
pub type PostForm = (String, Vec<(String, String)>);

/// Rule 2: the auto-posting form (action, fields), if this page is one.
pub fn auto_post_form(html: &str) -> Result<Option<PostForm>> {
    let doc = Html::parse_document(html);
    for form in doc.select(&sel("form")?) {
        let method = form.value().attr("method").unwrap_or("get");
        if !method.eq_ignore_ascii_case("post") {
            continue;
        }
        let inputs: Vec<(String, String)> = form
            .select(&sel("input[name]")?)
            .map(|i| {
                (
                    i.value().attr("name").unwrap_or_default().to_owned(),
                    i.value().attr("value").unwrap_or_default().to_owned(),
                )
            })
            .collect();
        if inputs.iter().any(|(n, _)| n == "auth") {
            let action = form.value().attr("action").unwrap_or_default().to_owned();
            return Ok(Some((action, inputs)));
        }
    }
    Ok(None)
}

/// Rule 4: the link to Cohesion's own identity provider on a WAYF chooser, if any.
pub fn cohesion_idp_link(html: &str) -> Result<Option<String>> {
    let doc = Html::parse_document(html);
    if let Some(a) = doc.select(&sel("a#idp-cohesion")?).next() {
        return Ok(a.value().attr("href").map(str::to_owned));
    }
    for a in doc.select(&sel("a[href]")?) {
        let href = a.value().attr("href").unwrap_or_default();
        let lower = href.to_ascii_lowercase();
        if lower.contains("entityid=cohesion") && lower.contains("idp") {
            return Ok(Some(href.to_owned()));
        }
    }
    for a in doc.select(&sel("a[href]")?) {
        let text: String = a.text().collect::<String>();
        if text
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("cohesion")
        {
            return Ok(a.value().attr("href").map(str::to_owned));
        }
    }
    Ok(None)
}

/// Rule 3: the error text of a Cohesion error page, if any.
pub fn error_text(html: &str) -> Result<Option<String>> {
    let doc = Html::parse_document(html);
    let found = doc
        .select(&sel("#errore, .errore, .error")?)
        .next()
        .map(|e| e.text().collect::<String>().trim().to_owned());
    Ok(found.filter(|t| !t.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_links_and_forms() {
        let page =
            r#"<a href="/x">Password</a><a href="https://h:1/SA/SmartCard.aspx?req=1">Accedi</a>"#;
        assert_eq!(
            smart_card_link(page).unwrap().as_deref(),
            Some("https://h:1/SA/SmartCard.aspx?req=1")
        );
        assert_eq!(
            smart_card_link(r#"<a href="/go">Accedi con Smart Card</a>"#)
                .unwrap()
                .as_deref(),
            Some("/go")
        );
        assert_eq!(smart_card_link("<p>niente</p>").unwrap(), None);
        assert_eq!(
            cohesion_idp_link(r#"<a href="/spid">SPID</a><a href="/w?entityID=cohesion2.regione.marche.it:idp">X</a>"#)
                .unwrap()
                .as_deref(),
            Some("/w?entityID=cohesion2.regione.marche.it:idp")
        );
        let form = r#"<form method="POST" action="https://site/cb"><input type="hidden" name="auth" value="QQ=="></form>"#;
        let (action, fields) = auto_post_form(form).unwrap().unwrap();
        assert_eq!(action, "https://site/cb");
        assert_eq!(fields, vec![("auth".to_owned(), "QQ==".to_owned())]);
        assert_eq!(
            error_text(r#"<p id="errore">Sito non abilitato</p>"#)
                .unwrap()
                .as_deref(),
            Some("Sito non abilitato")
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panic(s in "\\PC{0,300}") {
            let _ = smart_card_link(&s);
            let _ = auto_post_form(&s);
            let _ = error_text(&s);
            let _ = cohesion_idp_link(&s);
        }
    }
}
