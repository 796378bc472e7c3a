//! Normalising and checking what people type: emails, phone numbers, tags, names, keys.

/// Lower-cased, trimmed email, or `None` when it is not shaped like `local@domain.tld`.
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let valid = !local.is_empty()
        && local.len() <= 64
        && domain.len() <= 255
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    valid.then_some(email)
}

/// Digits with an optional leading `+`, separators (space, dot, dash, brackets) removed; at
/// least 5 and at most 20 digits.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let (plus, rest) = match raw.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", raw),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '.' | '-' | '(' | ')' => {}
            _ => return None,
        }
    }
    (5..=20).contains(&digits.len()).then(|| format!("{plus}{digits}"))
}

/// A tag as stored: trimmed, lower-cased, 1–50 characters, no commas or control characters.
pub fn normalize_tag(raw: &str) -> Option<String> {
    let tag = raw.trim().to_lowercase();
    let ok = !tag.is_empty() && tag.chars().count() <= 50 && !tag.chars().any(|c| c == ',' || c.is_control());
    ok.then_some(tag)
}

/// A display name or title: trimmed, 1..=max characters, no control characters.
pub fn clean_name(raw: &str, max: usize) -> Option<String> {
    let name = raw.trim();
    let ok = !name.is_empty() && name.chars().count() <= max && !name.chars().any(char::is_control);
    ok.then(|| name.to_owned())
}

/// A machine key (custom status key, custom field name): `[a-z0-9_]`, starting with a letter, ≤ 40.
pub fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some('a'..='z'))
        && key.len() <= 40
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(normalize_email("  Ann@Example.COM "), Some("ann@example.com".into()));
        for bad in ["", "ann", "ann@", "@x.com", "ann@x", "a b@x.com", "ann@x.com.", "a@b@c.com", "<a@b.com>"] {
            assert_eq!(normalize_email(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn phones() {
        assert_eq!(normalize_phone("+48 (22) 123-45-67"), Some("+48221234567".into()));
        assert_eq!(normalize_phone("0901.234.567"), Some("0901234567".into()));
        for bad in ["", "12", "+", "call me", "123456789012345678901", "12a45"] {
            assert_eq!(normalize_phone(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn tags_names_keys() {
        assert_eq!(normalize_tag(" VIP "), Some("vip".into()));
        assert_eq!(normalize_tag("a,b"), None);
        assert_eq!(normalize_tag("  "), None);
        assert_eq!(normalize_tag(&"x".repeat(51)), None);
        assert_eq!(clean_name("  Support  ", 10), Some("Support".into()));
        assert_eq!(clean_name("", 10), None);
        assert_eq!(clean_name("a\u{0}b", 10), None);
        assert_eq!(clean_name("abcdefghijk", 10), None);
        assert!(is_valid_key("waiting_on_vendor"));
        assert!(!is_valid_key("Waiting"));
        assert!(!is_valid_key("1st"));
        assert!(!is_valid_key(""));
        assert!(!is_valid_key("a-b"));
    }
}
