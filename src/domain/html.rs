//! The one HTML policy of message bodies (CORE-9, issue #13): what HTML a message may carry, whether it came by
//! mail (`channels::email::parse`) or through the API (agent replies and notes, custom-channel customer messages).
//!
//! - Tags and attributes: `ammonia`'s safe defaults — no scripts, styles, forms, frames, event handlers or `style`
//!   attributes.
//! - Links: only `http`, `https`, `mailto`, `tel`, each with `rel="noopener noreferrer nofollow"`; a relative URL (it
//!   would point into the help desk itself, e.g. `/api/v1/agents`) loses its `href`.
//! - Images never load anything: a remote `src` (`https:`, `//host/…`) is dropped and listed in
//!   [`Sanitized::remote_images`] (a UI may offer to load them with consent), a relative one is dropped too.
//! - `cid:` URLs mean something only in a mail: [`sanitize_with`] hands them to the caller's step (the mail parser
//!   turns them into attachment placeholders); [`sanitize`] drops them.
//! - HTML nested deeper than [`MAX_HTML_DEPTH`] is kept as its text, shown as HTML (the sanitiser's tree builder is
//!   quadratic in the depth).

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};

use mail_parser::decoders::html::{html_to_text, text_to_html};

/// Sanitised HTML, and the images it no longer loads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sanitized {
    pub html: String,
    /// `src` of images removed because they load from the network.
    pub remote_images: Vec<String>,
}

/// HTML that arrives through the API, under the policy of this module.
pub fn sanitize(html: &str) -> String {
    sanitize_with(html, |_| None).html
}

/// HTML under the policy of this module; `cid_link` says what a `cid:` URL (given without its scheme) becomes
/// (`None`: the attribute is dropped).
pub fn sanitize_with(html: &str, cid_link: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Sanitized {
    if nests_deeper_than(html, MAX_HTML_DEPTH) {
        // Too deep to sanitise in reasonable time: keep the text, shown as HTML.
        return sanitize_shallow(&text_to_html(&html_text(html)), cid_link);
    }
    sanitize_shallow(html, cid_link)
}

fn sanitize_shallow(html: &str, cid_link: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Sanitized {
    let remote = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&remote);
    let mut builder = ammonia::Builder::default();
    builder
        .url_schemes(["http", "https", "mailto", "tel", "cid"].into_iter().collect())
        // Relative URLs pass ammonia (a `cid_link` may make one) and are dropped by the filter below.
        .url_relative(ammonia::UrlRelative::PassThrough)
        .link_rel(Some("noopener noreferrer nofollow"))
        .attribute_filter(move |element, attribute, value| {
            if !matches!(attribute, "src" | "href" | "xlink:href") {
                return Some(Cow::Borrowed(value));
            }
            if let Some(scheme) = value.trim().get(..4).filter(|s| s.eq_ignore_ascii_case("cid:")) {
                return cid_link(&value.trim()[scheme.len()..]).map(Cow::Owned);
            }
            let relative = matches!(url::Url::parse(value), Err(url::ParseError::RelativeUrlWithoutBase));
            if element == "img" && attribute == "src" {
                // Remote (`https:`, protocol-relative `//host/x.png`) or meaningless (relative): never loaded.
                let v = value.trim_start();
                let is_remote = ["http:", "https:", "//"]
                    .iter()
                    .any(|p| v.get(..p.len()).is_some_and(|s| s.eq_ignore_ascii_case(p)));
                if is_remote {
                    // The sanitiser calls this from this thread only; a poisoned lock still holds usable data.
                    sink.lock().unwrap_or_else(PoisonError::into_inner).push(value.to_owned());
                }
                return None;
            }
            // A relative link would point into the help desk itself.
            (!relative).then_some(Cow::Borrowed(value))
        });
    let html = builder.clean(html).to_string();
    drop(builder);
    let remote_images = std::mem::take(&mut *remote.lock().unwrap_or_else(PoisonError::into_inner));
    Sanitized { html, remote_images }
}

/// HTML nested deeper than this is not given to the sanitiser, whose tree builder slows down with the square of the
/// depth (20,000 nested `<div>`s take seconds); real mail stays far below (Outlook's nested tables: tens).
pub const MAX_HTML_DEPTH: usize = 1_000;

/// Elements that never nest: void elements, and those a sibling of the same name closes (`<p>`, `<li>`, `<td>`…),
/// which old mailers leave open by the thousand.
const NON_NESTING: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr", "p",
    "li", "td", "th", "tr", "dt", "dd", "option",
];

/// Whether elements nest deeper than `limit`, by a linear scan of the tags (approximate, never slow).
fn nests_deeper_than(html: &str, limit: usize) -> bool {
    let bytes = html.as_bytes();
    let mut depth = 0usize;
    let mut from = 0;
    while let Some(offset) = html[from..].find('<') {
        let at = from + offset;
        let Some(end) = html[at..].find('>').map(|e| at + e) else { break };
        let closing = bytes.get(at + 1) == Some(&b'/');
        let name_start = at + 1 + usize::from(closing);
        let name_len =
            bytes.get(name_start..end).unwrap_or_default().iter().take_while(|b| b.is_ascii_alphanumeric()).count();
        let name = &html[name_start..name_start + name_len];
        if name_len > 0 && !NON_NESTING.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            if closing {
                depth = depth.saturating_sub(1);
            } else if bytes[end - 1] != b'/' {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
        }
        from = end + 1;
    }
    false
}

/// Elements that start a new line of text.
const BLOCK_ELEMENTS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "dd",
    "div",
    "dl",
    "dt",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "ol",
    "pre",
    "section",
    "table",
    "tr",
    "ul",
];

/// The text of an HTML body: `mail-parser`'s converter (which drops head, style and script and decodes entities)
/// after a pass that ends a line after each block element that held text and gives table cells a space; blank
/// lines collapsed.
pub fn html_text(html: &str) -> String {
    let mut prepared = String::with_capacity(html.len() + html.len() / 8);
    let bytes = html.as_bytes();
    let mut copied = 0;
    let mut from = 0;
    // Whether text came since the last line break, so `</li><li>` or `</div></div>` break once.
    let mut text_since_break = false;
    while let Some(offset) = html[from..].find('<') {
        let at = from + offset;
        if !html[from..at].trim().is_empty() {
            text_since_break = true;
        }
        let closing = bytes.get(at + 1) == Some(&b'/');
        let name_start = at + 1 + usize::from(closing);
        let name_len =
            bytes.get(name_start..).unwrap_or_default().iter().take_while(|b| b.is_ascii_alphanumeric()).count();
        // ASCII bytes only, so the slice sits on character boundaries.
        let name = &html[name_start..name_start + name_len];
        let insert = if BLOCK_ELEMENTS.iter().any(|b| b.eq_ignore_ascii_case(name)) && text_since_break {
            text_since_break = false;
            Some("<br>")
        } else if closing && (name.eq_ignore_ascii_case("td") || name.eq_ignore_ascii_case("th")) {
            Some(" ")
        } else {
            None
        };
        if let Some(insert) = insert {
            prepared.push_str(&html[copied..at]);
            prepared.push_str(insert);
            copied = at;
        }
        // The converter breaks lines at `<br>` and `</p>` itself.
        if (!closing && name.eq_ignore_ascii_case("br")) || (closing && name.eq_ignore_ascii_case("p")) {
            text_since_break = false;
        }
        match html[at..].find('>') {
            Some(end) => from = at + end + 1,
            None => break,
        }
    }
    prepared.push_str(&html[copied..]);
    let text = html_to_text(&prepared);
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines().map(str::trim_end) {
        if line.trim().is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line.trim_start_matches(' '));
    }
    out
}

/// Text made safe for HTML content and attribute values (`&`, `<`, `>`, `"`, `'`): the one escaper of the
/// project (templates, the portal's link pages, mail and Zalo bodies built as HTML).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy() {
        let clean = sanitize(concat!(
            r#"<style>p{background:url(https://t.example/x)}</style><script>alert(1)</script>"#,
            r#"<p onclick="x()" style="color:red">Hi <b>there</b></p><a href="javascript:alert(1)">js</a>"#,
            r#"<a href="/api/v1/agents">rel</a><a href="https://ok.example/">ok</a><img src="https://evil.example/x">"#,
            r#"<img src="/api/v1/conversations" alt="a"><img src="cid:logo"><a href="mailto:a@b.example">m</a>"#,
        ));
        for bad in ["<script", "alert", "<style", "t.example", "onclick", "color:red", "javascript:", "/api/v1", "evil"]
        {
            assert!(!clean.contains(bad), "{bad} in {clean}");
        }
        assert!(!clean.contains("cid:"), "{clean}");
        assert!(clean.contains("<b>there</b>"), "{clean}");
        assert!(
            clean.contains(r#"<a href="https://ok.example/" rel="noopener noreferrer nofollow">ok</a>"#),
            "{clean}"
        );
        assert!(clean.contains(r#"<a rel="noopener noreferrer nofollow">rel</a>"#), "{clean}");
        assert!(clean.contains(r#"<img alt="a">"#), "{clean}");
        assert!(clean.contains("mailto:a@b.example"), "{clean}");
    }

    #[test]
    fn remote_images_are_listed_and_cid_links_are_the_callers() {
        let s = sanitize_with(
            r#"<img src="https://t.example/p.gif"><img src="//cdn.example/a.png"><img src="cid:x">"#,
            |cid| Some(format!("{{{{attachment:{cid}}}}}")),
        );
        assert_eq!(s.remote_images, ["https://t.example/p.gif", "//cdn.example/a.png"]);
        assert_eq!(s.html, r#"<img><img><img src="{{attachment:x}}">"#);
    }

    #[test]
    fn html_text_breaks_blocks() {
        let html = "<html><head><title>t</title><style>p{}</style></head><body><div>Buongiorno,</div><div><br></div>\
            <div>vorrei un account, che inizia luned&igrave;.</div><ul><li>Reparto: Marketing</li><li>Tel</li></ul>\
            <table><tr><td>a</td><td>b</td></tr><tr><th>c</th><td>d</td></tr></table><p>Grazie,<br>Sara</p></body></html>";
        assert_eq!(
            html_text(html),
            "Buongiorno,\n\nvorrei un account, che inizia lunedì.\nReparto: Marketing\nTel\na b\nc d\nGrazie,\nSara"
        );
        assert_eq!(html_text(""), "");
        assert_eq!(html_text("<"), "");
        assert_eq!(html_text("a</"), "a");
        assert_eq!(html_text("Zażółć <b>gęślą</b>"), "Zażółć gęślą");
    }

    #[test]
    fn deep_html_becomes_text() {
        assert!(!nests_deeper_than("<div><p>a<p>b<br><img src=x><hr/></div>", 1));
        assert!(nests_deeper_than("<div><div>", 1));
        assert!(!nests_deeper_than(&"<p>x".repeat(5_000), 10), "unclosed paragraphs do not nest");
        assert!(!nests_deeper_than(&"<div>x</div>".repeat(5_000), 10));
        assert!(!nests_deeper_than("<div", 0) && !nests_deeper_than("</div></div>", 0));
        // 100,000 nested elements: the sanitiser would take minutes; the fallback is linear.
        let deep = format!("{}Hello <script>x()</script><b>there</b>", "<div>".repeat(100_000));
        assert_eq!(sanitize(&deep), "Hello there");
    }
}
