//! Forwarded mails: attached `message/rfc822` parts (nested up to [`super::MAX_FORWARD_DEPTH`]) and the
//! original sender of a forward quoted in the text (the "From:" line after a forward marker).

#[allow(unused_imports)]
use super::*;

pub(super) fn forwarded(message: &Message<'_>, depth: usize) -> Vec<ForwardedMail> {
    if depth >= MAX_FORWARD_DEPTH {
        return Vec::new();
    }
    message
        .attachments()
        .filter_map(|part| match &part.body {
            PartType::Message(m) => Some(ForwardedMail {
                from: m.from().and_then(first_mailbox),
                subject: clean_subject(m.subject()),
                message_id: m.message_id().and_then(clean_id),
                date: date(m),
                forwarded: forwarded(m, depth + 1),
            }),
            _ => None,
        })
        .collect()
}

/// Labels of the sender line in forward/reply header blocks, lower-case, in the languages of common clients.
pub(super) const FROM_LABELS: &[&str] =
    &["from", "von", "de", "od", "från", "fra", "van", "da", "от", "差出人", "发件人", "寄件者"];
/// Labels of the lines around it; one of them must be within three lines for a `From:` line to count.
pub(super) const BLOCK_LABELS: &[&str] = &[
    "date",
    "sent",
    "subject",
    "to",
    "cc",
    "datum",
    "gesendet",
    "betreff",
    "an",
    "envoyé",
    "objet",
    "à",
    "enviado",
    "asunto",
    "para",
    "fecha",
    "wysłano",
    "temat",
    "do",
    "data",
    "inviato",
    "oggetto",
    "skickat",
    "ämne",
    "till",
    "verzonden",
    "onderwerp",
    "aan",
    "отправлено",
    "тема",
    "кому",
    "дата",
    "件名",
    "宛先",
    "日時",
    "送信日時",
    "主题",
    "收件人",
    "日期",
];

/// Splits `Label: value` (also `Label : value`, `*Label:* value`, quoted with `>`); the label lower-cased.
pub(super) fn header_line(line: &str) -> Option<(String, &str)> {
    let line = line.trim_start_matches(|c: char| c == '>' || c.is_whitespace());
    let line = line.strip_prefix('*').unwrap_or(line);
    let (label, value) = line.split_once([':', '：'])?;
    let label = label.trim().trim_end_matches('*').trim();
    if label.is_empty() || label.chars().count() > 20 {
        return None;
    }
    let value = value.trim_start_matches('*').trim();
    Some((label.to_lowercase(), value))
}

pub(super) fn is_label(line: &str, labels: &[&str]) -> bool {
    header_line(line).is_some_and(|(label, _)| labels.contains(&label.as_str()))
}

/// The sender of the first forwarded or quoted header block in `text`: a `From:`-like line with an address, next to
/// another header line (`Date:`, `Sent:`, `Subject:`, `To:` …) so a sentence starting "From: …" does not count.
pub fn quoted_from(text: &str) -> Option<Mailbox> {
    let lines: Vec<&str> = text.lines().take(MAX_FORWARD_SCAN_LINES).collect();
    for (i, line) in lines.iter().enumerate() {
        let Some((label, value)) = header_line(line) else { continue };
        if !FROM_LABELS.contains(&label.as_str()) {
            continue;
        }
        let near = lines[i.saturating_sub(3)..(i + 4).min(lines.len())].iter().any(|l| is_label(l, BLOCK_LABELS));
        if !near {
            continue;
        }
        // The first block decides: a name without an address (Outlook's address-book names) says nothing about
        // the deeper blocks.
        return mailbox_from_text(value);
    }
    None
}

/// `Jane Doe <jane@x.com>`, `"Doe, Jane" <jane@x.com>`, `Jane Doe [mailto:jane@x.com]`, `jane@x.com`,
/// `Jane <jane@x.com<mailto:jane@x.com>>` (Outlook's HTML turned into text).
pub(super) fn mailbox_from_text(value: &str) -> Option<Mailbox> {
    let delimiter = |c: char| c.is_whitespace() || "<>[]()\"',;".contains(c);
    let at = value.find('@')?;
    let start = value[..at].rfind(delimiter).map_or(0, |p| p + 1);
    let end = value[at..].find(delimiter).map_or(value.len(), |p| at + p);
    let token = &value[start..end];
    let token = token.strip_prefix("mailto:").or_else(|| token.strip_prefix("MAILTO:")).unwrap_or(token);
    let address = crate::domain::text::normalize_email(token)?;
    let name_end = value.find(['<', '[']).unwrap_or(if start == 0 { 0 } else { start });
    let name = value[..name_end].trim().trim_matches(|c| c == '"' || c == '\'').trim();
    to_mailbox((!name.is_empty()).then_some(name), Some(&address))
}
