//! The headers [`super::parse`] keeps: addresses, the subject, message ids, the date, and the raw headers the
//! junk rules read.

#[allow(unused_imports)]
use super::*;

pub(super) fn clean_subject(subject: Option<&str>) -> String {
    subject.map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

pub(super) fn to_mailbox(name: Option<&str>, address: Option<&str>) -> Option<Mailbox> {
    // `From: MAILER-DAEMON` (no domain) parses as a name alone: one word is taken as the address.
    let address = match (address, name) {
        (Some(address), _) => address,
        (None, Some(word)) if !word.trim().is_empty() && !word.trim().contains(char::is_whitespace) => {
            return to_mailbox(None, Some(word));
        }
        _ => return None,
    };
    let address = address.trim().trim_matches(|c| c == '<' || c == '>').trim().to_lowercase();
    if address.is_empty() || address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let name = name
        .map(|n| n.split_whitespace().collect::<Vec<_>>().join(" "))
        .map(|n| n.trim_matches(|c| c == '"' || c == '\'').trim().to_owned())
        .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case(&address) && !n.chars().any(char::is_control));
    Some(Mailbox { address, name })
}

pub(super) fn first_mailbox(address: &Address<'_>) -> Option<Mailbox> {
    address.iter().find_map(|a| to_mailbox(a.name.as_deref(), a.address.as_deref()))
}

pub(super) fn mailboxes<'a>(values: impl Iterator<Item = &'a HeaderValue<'a>>) -> Vec<Mailbox> {
    let mut out: Vec<Mailbox> = Vec::new();
    for value in values {
        let Some(address) = value.as_address() else { continue };
        for a in address.iter() {
            if let Some(m) = to_mailbox(a.name.as_deref(), a.address.as_deref())
                && !out.iter().any(|o| o.address == m.address)
            {
                out.push(m);
            }
        }
    }
    out
}

pub(super) fn clean_id(raw: &str) -> Option<String> {
    let id = raw.trim().trim_start_matches('<').trim_end_matches('>').trim();
    let ok = !id.is_empty() && id.len() <= 998 && !id.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then(|| id.to_owned())
}

pub(super) fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let raw: Vec<&str> = match value {
        HeaderValue::Text(id) => vec![id.as_ref()],
        HeaderValue::TextList(list) => list.iter().map(|id| id.as_ref()).collect(),
        _ => Vec::new(),
    };
    let mut out: Vec<String> = Vec::new();
    for id in raw.into_iter().filter_map(clean_id) {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

pub(super) fn date(message: &Message<'_>) -> Option<DateTime<Utc>> {
    parsed_date(message.date())
}

pub(super) fn parsed_date(d: Option<&mail_parser::DateTime>) -> Option<DateTime<Utc>> {
    let d = d?;
    let sane = (1..=12).contains(&d.month)
        && (1..=31).contains(&d.day)
        && d.hour < 24
        && d.minute < 60
        && d.second <= 60
        && d.tz_hour < 24
        && d.tz_minute < 60;
    if !sane {
        return None;
    }
    DateTime::from_timestamp(d.to_timestamp(), 0)
}

/// `(name, value)` of every top-level header, values unfolded and trimmed.
pub(super) fn raw_headers<'a>(message: &'a Message<'a>) -> impl Iterator<Item = (&'a str, String)> + 'a {
    message.headers().iter().map(move |h| {
        let bytes = message.raw_message.get(h.offset_start as usize..h.offset_end as usize).unwrap_or_default();
        let value = String::from_utf8_lossy(bytes).split_whitespace().collect::<Vec<_>>().join(" ");
        (h.name.as_str(), value)
    })
}

pub(super) fn headers(message: &Message<'_>) -> Headers {
    let mut out = Headers::default();
    let mut return_path_seen = false;
    for (name, value) in raw_headers(message) {
        let first = |slot: &mut Option<String>, value: String| {
            if slot.is_none() {
                *slot = Some(value);
            }
        };
        if name.eq_ignore_ascii_case("auto-submitted") {
            first(&mut out.auto_submitted, value.to_lowercase());
        } else if name.eq_ignore_ascii_case("precedence") {
            first(&mut out.precedence, value.to_lowercase());
        } else if name.eq_ignore_ascii_case("x-auto-response-suppress") {
            first(&mut out.x_auto_response_suppress, value);
        } else if name.eq_ignore_ascii_case("x-loop") {
            out.x_loop.push(value);
        } else if name.eq_ignore_ascii_case("list-id") {
            first(&mut out.list_id, value);
        } else if name.eq_ignore_ascii_case("return-path") {
            // The topmost one is the final delivery agent's.
            if !return_path_seen {
                return_path_seen = true;
                let path = value.trim().trim_start_matches('<').trim_end_matches('>').trim().to_lowercase();
                out.return_path = if path.is_empty() { ReturnPath::Empty } else { ReturnPath::Address(path) };
            }
        } else if ["delivered-to", "x-original-to", "envelope-to"].iter().any(|h| name.eq_ignore_ascii_case(h)) {
            let address = value.trim().trim_start_matches('<').trim_end_matches('>').trim().to_lowercase();
            if !address.is_empty() && !out.delivered_to.contains(&address) {
                out.delivered_to.push(address);
            }
        }
    }
    match message.root_part().content_type() {
        Some(ct) => {
            let subtype = ct.subtype().unwrap_or_default();
            out.content_type = format!("{}/{}", ct.ctype(), subtype).to_lowercase();
            out.report_type = ct.attribute("report-type").map(str::to_lowercase);
        }
        None => out.content_type = "text/plain".to_owned(),
    }
    out
}
