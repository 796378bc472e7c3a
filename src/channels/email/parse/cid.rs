//! The mail's one step on top of the product's HTML policy ([`crate::domain::html`]): a `cid:` link to an inline
//! image becomes the placeholder `{{attachment:<content-id>}}` when the HTML is sanitised, and
//! [`fill_attachment_links`] later puts the stored attachment's URL there. Content ids are normalised here.

#[allow(unused_imports)]
use super::*;

/// Replaces every [`ATTACHMENT_PLACEHOLDER`] in an attribute of sanitised HTML with `url_for(content_id)`,
/// attribute-escaped; a content id without a stored attachment leaves an empty attribute value.
pub fn fill_attachment_links(html: &str, url_for: impl Fn(&str) -> Option<String>) -> String {
    let open = format!("=\"{ATTACHMENT_PLACEHOLDER}");
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(PLACEHOLDER_END) else { break };
        let cid = &after[..end];
        let Some(tail) = after[end + PLACEHOLDER_END.len()..].strip_prefix('"') else {
            // Not a whole attribute value: copy it as it is and go on after it.
            out.push_str(&rest[..start + open.len()]);
            rest = after;
            continue;
        };
        out.push_str(&rest[..start]);
        out.push_str("=\"");
        if let Some(url) = url_for(cid) {
            out.push_str(&crate::domain::html::escape(&url));
        }
        out.push('"');
        rest = tail;
    }
    out.push_str(rest);
    out
}

pub(super) struct Sanitized {
    pub(super) html: String,
    pub(super) cids: BTreeSet<String>,
    pub(super) remote_images: Vec<String>,
}

/// The mail's HTML under the one message-HTML policy ([`crate::domain::html`]), with the mail's own step on top:
/// a `cid:` link to an inline image becomes the placeholder `{{attachment:<content-id>}}` (and is collected).
pub(super) fn sanitize_html(html: &str) -> Sanitized {
    let cids = Arc::new(Mutex::new(BTreeSet::new()));
    let sink = Arc::clone(&cids);
    let clean = crate::domain::html::sanitize_with(html, move |cid| {
        let cid = percent_decode(cid).and_then(|c| normalize_content_id(&c)).filter(|c| is_safe_cid(c))?;
        let placeholder = format!("{ATTACHMENT_PLACEHOLDER}{cid}{PLACEHOLDER_END}");
        // The sanitiser calls this from this thread only; a poisoned lock still holds usable data.
        sink.lock().unwrap_or_else(PoisonError::into_inner).insert(cid);
        Some(placeholder)
    });
    let cids = std::mem::take(&mut *cids.lock().unwrap_or_else(PoisonError::into_inner));
    Sanitized { html: clean.html, cids, remote_images: clean.remote_images }
}

/// `%XX` decoding of a `cid:` URL (RFC 2392); `None` when the result is not UTF-8.
pub(super) fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A `Content-ID` as attachments and `cid:` links are matched: trimmed, without angle brackets.
pub fn normalize_content_id(raw: &str) -> Option<String> {
    let id = raw.trim().trim_start_matches('<').trim_end_matches('>').trim();
    (!id.is_empty() && id.len() <= MAX_CONTENT_ID_LEN && !id.chars().any(char::is_control)).then(|| id.to_owned())
}

/// Content ids that can sit in a placeholder without escaping (every real client's are).
pub(super) fn is_safe_cid(cid: &str) -> bool {
    cid.chars().all(|c| c.is_ascii_alphanumeric() || "._-+@$=!~*/:".contains(c))
}
