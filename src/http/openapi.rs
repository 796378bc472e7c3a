//! The OpenAPI 3.1 document, generated from the handlers' annotations, served at
//! `/api/openapi.json`, with a browsable Swagger UI at `/api/docs/`.
//!
//! The error answers (4xx) of every operation are added here in one place by [`ErrorResponses`],
//! from facts of the operation (credentials needed, admin only, path parameters, query, body) and
//! a short table of what only some routes answer ([`SPECIAL`]: conflicts, rules, throttling).
//! `tests/access.rs` checks these lists against the routes and handlers, and `scripts/schemathesis.sh`
//! against the running server.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::handlers::{
    activity, agents, attachments, audit, auth, channels, conversations, custom_channels, customers, delivery,
    email_channels, mattermost_channels, notification_settings, notifications, onboarding, ops, portal, reads,
    statuses, teams, templates, tokens, zalo_channels,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard API",
        description = "Omnichannel help desk: conversations from email and custom channels. \
            Authenticate with `Authorization: Bearer <token>` (API tokens) or the dashboard's session cookie \
            (then send `X-CSRF-Token` on POST/PATCH/PUT/DELETE). Errors are `{\"error\": code, \"message\": text}`.",
        license(name = "AGPL-3.0-or-later")
    ),
    paths(
        auth::login, auth::logout, auth::me, auth::setup_status, auth::setup,
        conversations::list, conversations::create, conversations::get, conversations::update, conversations::merge,
        conversations::messages, conversations::message_source, conversations::reply, conversations::note, conversations::end,
        conversations::counts,
        delivery::retry,
        reads::mark, reads::unread, activity::list,
        customers::search, customers::get, customers::update, customers::conversations, customers::add_identity,
        customers::remove_identity, customers::merge, customers::companies,
        agents::list, agents::create, agents::get, agents::update, agents::set_channels,
        onboarding::invite, onboarding::get, onboarding::accept, onboarding::checklist, onboarding::dismiss,
        teams::list, teams::create, teams::get, teams::update, teams::delete, teams::set_members,
        channels::list, channels::create, channels::get, channels::update, channels::delete, channels::deliveries,
        statuses::list, statuses::create, statuses::update, statuses::delete,
        templates::list, templates::get, templates::save, templates::reset, templates::preview,
        tokens::list, tokens::create, tokens::delete,
        attachments::upload, attachments::download,
        audit::list,
        custom_channels::create, custom_channels::list, custom_channels::get, custom_channels::update, custom_channels::delete,
        custom_channels::rotate_secret, custom_channels::inbound, custom_channels::deliveries, custom_channels::resend,
        email_channels::create, email_channels::list, email_channels::get, email_channels::update, email_channels::delete,
        email_channels::check, email_channels::log, email_channels::log_source,
        mattermost_channels::create, mattermost_channels::list, mattermost_channels::get, mattermost_channels::update,
        mattermost_channels::delete, mattermost_channels::recipients, mattermost_channels::outbound,
        zalo_channels::create, zalo_channels::list, zalo_channels::get, zalo_channels::update, zalo_channels::delete,
        zalo_channels::webhook,
        notifications::list, notifications::read, notifications::read_all, notifications::mentionable,
        notification_settings::get, notification_settings::update,
        ops::healthz, ops::readyz, ops::metrics,
        portal::login, portal::logout, portal::me, portal::forgot, portal::reset, portal::tickets, portal::ticket,
        portal::messages, portal::open, portal::reply, portal::close, portal::rate, portal::upload, portal::download,
        portal::auto_login, portal::rate_link, portal::unsubscribe_link,
    ),
    components(schemas(crate::http::error::ErrorBody)),
    modifiers(&SecuritySchemes, &ErrorResponses),
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
        (name = "mattermost channels", description = "Mattermost bots: DMs and channel posts in, replies as the bot (see docs/mattermost.md)"),
        (name = "zalo channels", description = "Zalo Official Accounts: signed webhook events in, replies through the OA API (see docs/zalo.md)"),
        (name = "statuses", description = "Built-in and custom statuses"),
        (name = "notification templates", description = "Notification mail templates with masks, and their preview (TP-1…TP-3, see docs/templates.md)"),
        (name = "tokens", description = "API tokens"),
        (name = "attachments", description = "File uploads and downloads"),
        (name = "audit", description = "Who changed what"),
        (name = "notifications", description = "The caller's notification inbox: assigned, mentioned, customer replied, chat waiting"),
        (name = "settings", description = "Instance settings: email notifications (NT-1…NT-13)"),
        (name = "operations", description = "Health, readiness, metrics"),
        (name = "portal", description = "The customer portal (issue #18, docs/portal.md): a customer's own tickets, \
            signed in with the `sb_customer` cookie (never an agent's session or token); and the signed links of \
            notification mail (auto-login, rating, unsubscribe)"),
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
        // The customer portal's own principal (issue #18, CU-3): only `/portal/api/...` takes it.
        components.add_security_scheme(
            "customer_session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::http::customer_session::CUSTOMER_COOKIE))),
        );
    }
}

/// Operations whose handler takes the `Admin` extractor: 403 `forbidden` for agents, whatever the
/// method. (`tests/access.rs` checks this list against the handlers' signatures.)
pub const ADMIN_ONLY: &[&str] = &[
    "agents_create",
    "agents_set_channels",
    "agents_invite",
    "onboarding_get",
    "onboarding_dismiss",
    "teams_create",
    "teams_update",
    "teams_delete",
    "teams_set_members",
    "channels_create",
    "channels_update",
    "channels_delete",
    "channels_deliveries",
    "statuses_create",
    "statuses_update",
    "statuses_delete",
    "audit_list",
    "notification_templates_list",
    "notification_templates_get",
    "notification_templates_save",
    "notification_templates_reset",
    "notification_templates_preview",
    "custom_channels_create",
    "custom_channels_update",
    "custom_channels_delete",
    "custom_channels_rotate_secret",
    "custom_channels_deliveries",
    "custom_channels_resend",
    "email_channels_create",
    "email_channels_update",
    "email_channels_delete",
    "email_channels_check",
    "email_channels_log",
    "email_channels_log_source",
    "mattermost_channels_create",
    "mattermost_channels_update",
    "mattermost_channels_delete",
    "zalo_channels_create",
    "zalo_channels_update",
    "zalo_channels_delete",
    "notification_settings_get",
    "notification_settings_update",
];

/// The [`ADMIN_ONLY`] operations that need a super admin (`SuperAdmin`): connecting, changing and removing
/// channels of any kind (CC-11).
pub const SUPER_ADMIN_ONLY: &[&str] = &[
    "channels_create",
    "channels_update",
    "channels_delete",
    "custom_channels_create",
    "custom_channels_update",
    "custom_channels_delete",
    "custom_channels_rotate_secret",
    "email_channels_create",
    "email_channels_update",
    "email_channels_delete",
    "mattermost_channels_create",
    "mattermost_channels_update",
    "mattermost_channels_delete",
    "zalo_channels_create",
    "zalo_channels_update",
    "zalo_channels_delete",
];

const CONFLICT: (u16, &str) = (409, "`conflict`: the change collides with existing data");
const REFERENCE: (u16, &str) =
    (422, "`unknown_reference`: a referenced row does not exist; `rule_violation`: a rule says no");

/// What only some operations answer, beyond what [`ErrorResponses`] derives for every operation.
pub const SPECIAL: &[(&str, &[(u16, &str)])] = &[
    (
        "auth_login",
        &[
            (401, "`invalid_credentials`: wrong email or password"),
            (429, "`too_many_requests`: too many failed sign-ins; retry after `Retry-After` seconds"),
        ],
    ),
    ("auth_setup", &[(409, "`conflict`: setup is done, an admin already exists")]),
    ("agents_create", &[CONFLICT, REFERENCE]),
    ("agents_update", &[REFERENCE]),
    ("agents_invite", &[(409, "`conflict`: the email belongs to an agent who has a password"), REFERENCE]),
    (
        "invitations_get",
        &[(422, "`invitation_expired`, `invitation_used` or `invitation_revoked`: the link no longer works")],
    ),
    (
        "invitations_accept",
        &[(422, "`invitation_expired`, `invitation_used` or `invitation_revoked`: the link no longer works")],
    ),
    (
        "conversations_retry_message",
        &[
            (409, "`conflict`: the message's delivery has not failed (pending, being sent, or sent)"),
            (422, "`not_retryable`: the message has no delivery (incoming, a note)"),
        ],
    ),
    ("agents_set_channels", &[REFERENCE]),
    ("teams_create", &[CONFLICT, REFERENCE]),
    ("teams_update", &[CONFLICT]),
    ("teams_set_members", &[REFERENCE]),
    ("channels_create", &[REFERENCE]),
    ("channels_update", &[REFERENCE]),
    ("statuses_create", &[CONFLICT]),
    ("statuses_delete", &[(409, "`conflict`: conversations still have this status"), REFERENCE]),
    ("tokens_create", &[REFERENCE]),
    ("conversations_create", &[REFERENCE]),
    ("conversations_update", &[REFERENCE]),
    ("conversations_merge", &[REFERENCE]),
    ("conversations_reply", &[REFERENCE]),
    ("conversations_note", &[REFERENCE]),
    ("conversations_read", &[(422, "`unknown_reference`: `seq` names no message of the conversation")]),
    ("conversations_end", &[(409, "`conflict`: the chat had already ended"), (422, "`rule_violation`: not a chat")]),
    ("customers_update", &[REFERENCE]),
    ("customers_add_identity", &[CONFLICT, REFERENCE]),
    ("customers_merge", &[REFERENCE]),
    ("custom_channels_create", &[REFERENCE]),
    ("custom_channels_update", &[REFERENCE]),
    (
        "custom_channels_inbound",
        &[(409, "`conflict`: the customer was being created by a concurrent request; retry"), REFERENCE],
    ),
    (
        "mattermost_channels_create",
        &[(
            422,
            "`mattermost_token_rejected` (401 from Mattermost), `mattermost_not_a_bot`, `mattermost_unreachable`, \
             `unknown_reference`: the bot cannot be connected; nothing is stored",
        )],
    ),
    (
        "mattermost_channels_update",
        &[(
            422,
            "`mattermost_token_rejected`, `mattermost_not_a_bot`, `mattermost_other_bot`, `mattermost_unreachable`, \
             `unknown_reference`",
        )],
    ),
    (
        "mattermost_channels_recipients",
        &[(422, "`mattermost_unreachable`: Mattermost did not answer; `rule_violation`: no bot connected")],
    ),
    (
        "mattermost_channels_outbound",
        &[(
            422,
            "`unknown_reference`: Mattermost does not know the member or channel; `mattermost_unreachable`; \
             `rule_violation`: no bot connected, or the channel is disabled",
        )],
    ),
    (
        "zalo_channels_create",
        &[(
            422,
            "`unknown_reference`: no such team; `zalo_url_refused`: a base URL is an internal address the outgoing \
             policy refuses; nothing is stored",
        )],
    ),
    ("zalo_channels_update", &[(422, "`unknown_reference`, `zalo_url_refused`")]),
    (
        "zalo_channels_webhook",
        &[
            (
                401,
                "`invalid_signature`: X-ZEvent-Signature missing or wrong, or the channel is disabled; nothing stored",
            ),
            (503, "`unavailable`: the event could not be stored now; Zalo retries it"),
        ],
    ),
    ("email_channels_check", &[(409, "`conflict`: the mailbox is disabled")]),
    (
        "ops_metrics",
        &[
            (401, "`unauthorized`: `SWITCHBOARD_METRICS_TOKEN` is set and the Bearer token is missing or wrong"),
            (404, "`not_found`: `SWITCHBOARD_METRICS_BIND` is set, so `/metrics` is served on that address only"),
        ],
    ),
];

/// Adds to every operation the 4xx it can give, each with the [`ErrorBody`] schema:
/// 401 where credentials are needed; 403 for admin-only operations ([`ADMIN_ONLY`]) and for every
/// state-changing one (a session cookie without the right `X-CSRF-Token`; some also check roles);
/// 404 where a path names a row; 400 where a path, query or body is parsed; 413 and 415 for a
/// JSON body (413 also for an upload); then [`SPECIAL`]. What an annotation already lists stays.
///
/// [`ErrorBody`]: crate::http::error::ErrorBody
struct ErrorResponses;

impl ErrorResponses {
    fn statuses(op: &Operation, method: &str) -> Vec<(u16, &'static str)> {
        let id = op.operation_id.as_deref().unwrap_or_default();
        let params = op.parameters.as_deref().unwrap_or_default();
        let in_path = params.iter().any(|p| matches!(p.parameter_in, ParameterIn::Path));
        let in_query = params.iter().any(|p| matches!(p.parameter_in, ParameterIn::Query));
        let body = op.request_body.as_ref();
        let json_body = body.is_some_and(|b| b.content.contains_key("application/json"));
        // `security()` on an operation makes it public; otherwise the document's security holds.
        let authenticated = op.security.as_ref().is_none_or(|s| !s.is_empty());
        let changes = method != "get";
        let mut out = Vec::new();
        if in_path || in_query || body.is_some() {
            out.push((
                400,
                "`invalid_json`, `validation_failed`, `invalid_query` or `invalid_path`: the request is malformed",
            ));
        }
        if authenticated {
            out.push((401, "`unauthorized`: no valid credentials"));
        }
        match (ADMIN_ONLY.contains(&id), authenticated && changes) {
            (true, _) if SUPER_ADMIN_ONLY.contains(&id) => out.push((
                403,
                "`forbidden`: this needs a super admin (CC-11: connecting, changing and removing channels); `csrf_failed`: see X-CSRF-Token",
            )),
            (true, _) => out.push((403, "`forbidden`: this needs an admin; `csrf_failed`: see X-CSRF-Token")),
            (false, true) => out.push((
                403,
                "`csrf_failed`: a session cookie without the session's `X-CSRF-Token`; `forbidden`: not allowed",
            )),
            (false, false) => {}
        }
        if in_path {
            out.push((404, "`not_found`: no such row, or not in the caller's channels"));
        }
        if body.is_some() {
            out.push((413, "`payload_too_large`: the body is larger than the server's limit"));
        }
        if json_body {
            out.push((415, "`unsupported_media_type`: send JSON with Content-Type: application/json"));
        }
        if let Some((_, extra)) = SPECIAL.iter().find(|(op_id, _)| *op_id == id) {
            out.extend_from_slice(extra);
        }
        out
    }
}

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error = || {
            Content::new(Some(RefOr::Ref(Ref::from_schema_name(
                <crate::http::error::ErrorBody as utoipa::ToSchema>::name(),
            ))))
        };
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                ("get", &mut item.get),
                ("post", &mut item.post),
                ("put", &mut item.put),
                ("patch", &mut item.patch),
                ("delete", &mut item.delete),
            ];
            for (method, op) in ops {
                let Some(op) = op else { continue };
                for (status, description) in Self::statuses(op, method) {
                    op.responses.responses.entry(status.to_string()).or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(description)
                                .content("application/json", error())
                                .build(),
                        )
                    });
                }
            }
        }
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
