//! Bounds on stored text, so that no accepted event or answer can push an item past DynamoDB's
//! 400 KB limit.

/// Longest error message, username or display name kept, in bytes.
pub const MAX_TEXT_BYTES: usize = 2048;

/// Cuts text to at most [`MAX_TEXT_BYTES`] on a character boundary; empty text is no text.
pub fn bounded_text(raw: Option<&str>) -> Option<String> {
    let raw = raw?.trim();
    if raw.is_empty() {
        return None;
    }
    let mut end = raw.len().min(MAX_TEXT_BYTES);
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    Some(raw[..end].to_owned())
}

/// Keeps a URL only if it is an http(s) URL of at most [`MAX_TEXT_BYTES`]: a cut URL is a wrong
/// URL, and any other scheme (`javascript:`, `data:`) never reaches the app.
pub fn bounded_url(raw: Option<&str>) -> Option<String> {
    let raw = raw?.trim();
    is_http_url(raw, MAX_TEXT_BYTES).then(|| raw.to_owned())
}

/// Longest id from the service kept, in bytes; a cut id is a wrong id, so a longer one is dropped.
pub const MAX_ID_BYTES: usize = 256;

/// Keeps an id only if it is non-empty and at most [`MAX_ID_BYTES`].
pub fn bounded_id(raw: Option<&str>) -> Option<String> {
    let raw = raw?.trim();
    (!raw.is_empty() && raw.len() <= MAX_ID_BYTES).then(|| raw.to_owned())
}

/// Whether `raw` is an http(s) URL of at most `max_bytes`, as the app's bounds require.
pub fn is_http_url(raw: &str, max_bytes: usize) -> bool {
    let lower = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
    let scheme_ok = lower.starts_with("https://") || lower.starts_with("http://");
    let has_host = raw.split_once("://").is_some_and(|(_, rest)| !rest.is_empty());
    scheme_ok && has_host && raw.len() <= max_bytes && !raw.chars().any(char::is_whitespace)
}

/// The origins a `redirect_url` may go to when none are configured: the app run locally.
pub const DEFAULT_REDIRECT_ORIGINS: [&str; 2] = ["http://localhost:3000", "http://127.0.0.1:3000"];

/// Whether `origin` is an origin as the allowed list holds them: `http(s)://host[:port]`, no path.
pub fn is_origin(origin: &str) -> bool {
    is_http_url(origin, MAX_TEXT_BYTES)
        && origin.split_once("://").is_some_and(|(_, rest)| !rest.contains(['/', '?', '#', '@']))
}

/// Whether `url` goes to one of the allowed origins: it is that origin, or that origin followed by
/// a path, query or fragment (so `https://app.example.com.evil.test` is not `https://app.example.com`,
/// nor is `https://app.example.com@evil.test`). Scheme and host compare case-insensitively.
pub fn allowed_redirect(url: &str, origins: &[String]) -> bool {
    origins.iter().any(|origin| {
        let head = url.get(..origin.len()).filter(|head| head.eq_ignore_ascii_case(origin));
        let rest = &url[head.map_or(url.len(), str::len)..];
        head.is_some() && (rest.is_empty() || rest.starts_with(['/', '?', '#']))
    })
}

/// What `encodeURIComponent` leaves as it is: letters, digits and `-_.!~*'()`.
const URI_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// How long `url` is once URL-encoded as a query value, as the service measures a `redirect_url`.
pub fn encoded_len(url: &str) -> usize {
    percent_encoding::utf8_percent_encode(url, URI_COMPONENT).map(str::len).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_measured_as_the_service_encodes_it() {
        assert_eq!(encoded_len("https://a.b/c"), "https%3A%2F%2Fa.b%2Fc".len());
        assert_eq!(encoded_len("x-_.!~*'()"), 10);
        assert_eq!(encoded_len("é"), 6);
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary_and_long_urls_are_dropped() {
        let long = "é".repeat(MAX_TEXT_BYTES);
        let cut = bounded_text(Some(&long)).unwrap();
        assert!(cut.len() <= MAX_TEXT_BYTES && cut.chars().all(|c| c == 'é'));
        assert_eq!(bounded_url(Some(&"h".repeat(MAX_TEXT_BYTES + 1))), None);
        assert_eq!(bounded_url(Some("")), None);
        assert_eq!(bounded_text(Some("  ")), None);
        assert_eq!(bounded_id(Some(&"1".repeat(MAX_ID_BYTES + 1))), None);
        assert_eq!(bounded_id(Some("185")).as_deref(), Some("185"));
    }

    #[test]
    fn app_urls_must_be_http_and_short_enough() {
        assert!(is_http_url("https://cdn.example/a.png?X-Amz-Signature=abc", 8192));
        assert!(is_http_url("HTTP://example.com", 2048));
        assert!(!is_http_url("ftp://example.com/a", 8192));
        assert!(!is_http_url("javascript:alert(1)", 8192));
        assert!(!is_http_url("https://", 8192));
        assert!(!is_http_url(&format!("https://e.com/{}", "a".repeat(2048)), 2048));
    }

    #[test]
    fn a_redirect_goes_only_to_an_allowed_origin_never_to_a_lookalike() {
        let origins = vec!["https://app.thestacc.com".to_owned(), "http://localhost:3000".to_owned()];
        for ok in [
            "https://app.thestacc.com",
            "https://app.thestacc.com/settings?tab=social#x",
            "HTTPS://APP.thestacc.com/a",
            "http://localhost:3000/cb",
        ] {
            assert!(allowed_redirect(ok, &origins), "{ok}");
        }
        for refused in [
            "https://app.thestacc.com.evil.test/cb",
            "https://app.thestacc.com@evil.test/cb",
            "https://app.thestacc.comx/",
            "http://app.thestacc.com/",
            "http://localhost:30000/",
            "https://evil.test/?https://app.thestacc.com",
            "",
        ] {
            assert!(!allowed_redirect(refused, &origins), "{refused}");
        }
        assert!(is_origin("https://app.thestacc.com") && is_origin("http://127.0.0.1:3000"));
        assert!(!is_origin("https://app.thestacc.com/") && !is_origin("javascript:x") && !is_origin("https://u@h"));
    }
}
