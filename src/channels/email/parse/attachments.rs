//! A mail's attachments: MIME types, safe file names, and which parts are files (inline images referenced by
//! the HTML included).

#[allow(unused_imports)]
use super::*;

pub(super) fn mime_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_lowercase(),
            None => ct.ctype().to_lowercase(),
        },
        None => match part.body {
            PartType::Message(_) => "message/rfc822".to_owned(),
            PartType::Text(_) => "text/plain".to_owned(),
            PartType::Html(_) => "text/html".to_owned(),
            _ => "application/octet-stream".to_owned(),
        },
    }
}

/// The sender's file name without path, control characters, or characters no file system takes (`:*?"<>|`
/// become `_`, as Windows clients do), at most [`MAX_FILE_NAME_CHARS`] characters.
pub(super) fn clean_file_name(raw: &str) -> Option<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let name: String = base
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if ":*?\"<>|".contains(c) { '_' } else { c })
        .take(MAX_FILE_NAME_CHARS)
        .collect();
    let name = name.trim();
    (!name.is_empty() && name != "." && name != "..").then(|| name.to_owned())
}

pub(super) fn extension_for(mime: &str) -> &'static str {
    match mime {
        "message/rfc822" => "eml",
        "text/html" => "html",
        "text/calendar" => "ics",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "application/pdf" => "pdf",
        "message/delivery-status" | "message/disposition-notification" | "message/feedback-report" => "txt",
        _ if mime.starts_with("text/") => "txt",
        _ => mime_guess::get_mime_extensions_str(mime).and_then(|e| e.first().copied()).unwrap_or("bin"),
    }
}

pub(super) fn attachments(message: &Message<'_>, referenced: &BTreeSet<String>) -> Vec<Attachment> {
    let mut out = Vec::new();
    for part in message.attachments() {
        let bytes = match &part.body {
            PartType::Text(text) | PartType::Html(text) => text.as_bytes().to_vec(),
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => bytes.to_vec(),
            PartType::Message(m) => m.raw_message().to_vec(),
            PartType::Multipart(_) => continue,
        };
        let mut mime = mime_type(part);
        let named = part.attachment_name().and_then(clean_file_name);
        if mime == "application/octet-stream"
            && let Some(guess) = named.as_deref().and_then(|n| mime_guess::from_path(n).first())
        {
            mime = guess.essence_str().to_owned();
        }
        let file_name = named.unwrap_or_else(|| match &part.body {
            PartType::Message(m) => {
                let subject = clean_subject(m.subject());
                let stem = clean_file_name(&subject).unwrap_or_else(|| "forwarded message".to_owned());
                format!("{stem}.eml")
            }
            _ => format!("attachment-{}.{}", out.len() + 1, extension_for(&mime)),
        });
        let content_id = part.content_id().and_then(normalize_content_id);
        let inline = content_id.as_ref().is_some_and(|c| referenced.contains(c));
        out.push(Attachment { file_name, mime_type: mime, bytes, content_id, inline });
    }
    out
}
