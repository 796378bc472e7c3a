//! The OpenAPI 3.1 document, generated from the handlers' annotations, served at
//! `/api/openapi.json`, with a browsable Swagger UI at `/api/docs/`.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::handlers::{
    agents, attachments, audit, auth, channels, conversations, custom_channels, customers, email_channels, ops,
    statuses, teams, tokens,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard API",
        description = "Omnichannel help desk: conversations from email, Mattermost, Zalo and custom channels. \
            Authenticate with `Authorization: Bearer <token>` (API tokens) or the dashboard's session cookie \
            (then send `X-CSRF-Token` on POST/PATCH/PUT/DELETE). Errors are `{\"error\": code, \"message\": text}`.",
        license(name = "AGPL-3.0-or-later")
    ),
    paths(
        auth::login, auth::logout, auth::me, auth::setup_status, auth::setup,
        conversations::list, conversations::create, conversations::get, conversations::update, conversations::merge,
        conversations::messages, conversations::message_source, conversations::reply, conversations::note, conversations::end,
        customers::search, customers::get, customers::update, customers::conversations, customers::add_identity,
        customers::remove_identity, customers::merge, customers::companies,
        agents::list, agents::create, agents::get, agents::update, agents::set_channels,
        teams::list, teams::create, teams::get, teams::update, teams::delete, teams::set_members,
        channels::list, channels::create, channels::get, channels::update, channels::delete, channels::deliveries,
        statuses::list, statuses::create, statuses::update, statuses::delete,
        tokens::list, tokens::create, tokens::delete,
        attachments::upload, attachments::download,
        audit::list,
        custom_channels::create, custom_channels::list, custom_channels::get, custom_channels::update, custom_channels::delete,
        custom_channels::rotate_secret, custom_channels::inbound, custom_channels::deliveries, custom_channels::resend,
        email_channels::create, email_channels::list, email_channels::get, email_channels::update, email_channels::delete,
        email_channels::check, email_channels::log, email_channels::log_source,
        ops::healthz, ops::readyz, ops::metrics,
    ),
    components(schemas(crate::http::error::ErrorBody)),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "auth", description = "Sign in and out; first-run setup"),
        (name = "conversations", description = "Chats and tickets, their messages and notes"),
        (name = "customers", description = "Customers, identities, companies"),
        (name = "agents", description = "Agents and their channel access"),
        (name = "teams", description = "Teams (categories)"),
        (name = "channels", description = "Channel instances"),
        (name = "custom channels", description = "Integrator channels: inbound API and signed reply webhook (see custom.md)"),
        (name = "email channels", description = "Mailboxes: IMAP/POP3 in, SMTP out (see email.md)"),
        (name = "statuses", description = "Built-in and custom statuses"),
        (name = "tokens", description = "API tokens"),
        (name = "attachments", description = "File uploads and downloads"),
        (name = "audit", description = "Who changed what"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::auth::SESSION_COOKIE))),
        );
    }
}

/// The document as JSON (also printed by `switchboard openapi`).
pub fn document_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|_| "{}".into())
}

/// Swagger UI at `/api/docs/` and the document at `/api/openapi.json`.
pub fn docs() -> SwaggerUi {
    SwaggerUi::new("/api/docs/{_:.*}").url("/api/openapi.json", ApiDoc::openapi())
}
