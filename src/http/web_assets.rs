//! The dashboard: files built from `web/` into `web/dist`, embedded into the binary at compile
//! time so a release is one file. Unknown non-API paths get `index.html` (client-side routing); `/portal` and
//! `/portal/...` get the customer portal's page, `portal.html` (issue #18).
//!
//! Every answer carries [`CONTENT_SECURITY_POLICY`]: the dashboard loads scripts, styles, images,
//! fonts and connections (REST and the socket) from its own origin only, and no other site may
//! frame it. The Vite build needs no inline script or style element; Preact sets `style`
//! properties through the CSSOM, which a policy does not restrict. `data:` images are allowed for
//! the inline favicon.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

/// The dashboard's Content-Security-Policy (issue #13).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

#[derive(RustEmbed)]
#[folder = "web/dist"]
struct Assets;

pub async fn serve(req: HttpRequest) -> HttpResponse {
    if req.method() != actix_web::http::Method::GET && req.method() != actix_web::http::Method::HEAD {
        return HttpResponse::MethodNotAllowed().finish();
    }
    let path = req.path().trim_start_matches('/');
    // The customer portal (issue #18) is the build's second page: `/portal` and its deep links get `portal.html`.
    let shell = if path == "portal" || path.starts_with("portal/") { "portal.html" } else { "index.html" };
    let (file, name) = match Assets::get(path).filter(|_| !path.is_empty()) {
        Some(f) => (f, path),
        None => match Assets::get(shell) {
            Some(f) => (f, shell),
            None => return HttpResponse::NotFound().body("dashboard not built"),
        },
    };
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    // Hashed asset names never change content; index.html must always be fresh.
    let cache = if name.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    HttpResponse::Ok()
        .content_type(mime.as_ref())
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Referrer-Policy", "same-origin"))
        .body(file.data.into_owned())
}
