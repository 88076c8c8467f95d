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

/// Keeps a URL only if it is non-empty and at most [`MAX_TEXT_BYTES`]: a cut URL is a wrong URL.
pub fn bounded_url(raw: Option<&str>) -> Option<String> {
    let raw = raw?.trim();
    (!raw.is_empty() && raw.len() <= MAX_TEXT_BYTES).then(|| raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_on_a_character_boundary_and_long_urls_are_dropped() {
        let long = "é".repeat(MAX_TEXT_BYTES);
        let cut = bounded_text(Some(&long)).unwrap();
        assert!(cut.len() <= MAX_TEXT_BYTES && cut.chars().all(|c| c == 'é'));
        assert_eq!(bounded_url(Some(&"h".repeat(MAX_TEXT_BYTES + 1))), None);
        assert_eq!(bounded_url(Some("")), None);
        assert_eq!(bounded_text(Some("  ")), None);
    }
}
