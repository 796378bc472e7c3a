//! A mail's text body and its raw HTML body (the HTML alternative, or the text one shown as HTML, with inline
//! images of related parts), before the HTML is sanitised by [`super::cid`].

#[allow(unused_imports)]
use super::*;

pub(super) fn normalize_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n").trim_end().to_owned()
}

pub(super) fn body_text(message: &Message<'_>) -> String {
    let mut out = String::new();
    for part in message.text_bodies() {
        let piece: Cow<'_, str> = match &part.body {
            PartType::Text(text) => Cow::Borrowed(text.as_ref()),
            PartType::Html(html) => Cow::Owned(html_text(html)),
            _ => continue,
        };
        if piece.trim().is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&piece);
    }
    normalize_newlines(&out)
}

/// The HTML body before sanitising, when the mail has a real `text/html` part. Text parts between HTML parts
/// (Apple Mail's mixed bodies) are converted, inline images in the body list become `cid:` images.
pub(super) fn raw_html_body(message: &Message<'_>) -> Option<String> {
    if !message.html_bodies().any(|p| matches!(p.body, PartType::Html(_))) {
        return None;
    }
    let mut html = String::new();
    for part in message.html_bodies() {
        match &part.body {
            PartType::Html(h) => html.push_str(h),
            PartType::Text(t) => html.push_str(&text_to_html(t)),
            PartType::Binary(_) | PartType::InlineBinary(_) => {
                if let Some(cid) = part.content_id().and_then(normalize_content_id)
                    && mime_type(part).starts_with("image/")
                {
                    html.push_str(&format!("<img src=\"cid:{}\">", crate::domain::html::escape(&cid)));
                }
            }
            _ => {}
        }
    }
    Some(html)
}
