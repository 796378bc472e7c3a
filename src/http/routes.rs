//! Every route of the server, in one place.

use actix_web::{HttpRequest, web};

use super::error::ApiError;
use super::handlers::{
    activity, agents, attachments, audit, auth, channels, conversations, custom_channels, customers, delivery,
    email_channels, mattermost_channels, notification_settings, notifications, onboarding, ops, portal, reads,
    statuses, teams, templates, tokens, zalo_channels,
};
use super::{openapi, web_assets};

/// Register all routes. `max_body` caps JSON bodies; `max_upload` caps attachment uploads.
pub fn configure(cfg: &mut web::ServiceConfig, max_body: usize, max_upload: usize) {
    cfg.app_data(json_config(max_body))
        .app_data(web::QueryConfig::default().error_handler(|err, _req: &HttpRequest| {
            ApiError::BadRequest { code: "invalid_query", message: err.to_string() }.into()
        }))
        .app_data(web::PathConfig::default().error_handler(|err, _req: &HttpRequest| {
            ApiError::BadRequest { code: "invalid_path", message: err.to_string() }.into()
        }))
        .app_data(web::PayloadConfig::new(max_body))
        .route("/healthz", web::get().to(ops::healthz))
        .route("/readyz", web::get().to(ops::readyz))
        .route("/metrics", web::get().to(ops::metrics))
        // Zalo's domain verification looks for its file at the root of the public URL (ZL-2).
        .route(r"/{name:zalo_verifier[A-Za-z0-9_-]{1,100}\.html}", web::get().to(zalo_channels::verifier))
        // The customer portal (issue #18): its API, a different principal from the agents' (`http::customer_session`),
        // and the pages of the signed links mail carries. The portal's own page is served by `web_assets`.
        .service(
            web::scope("/portal/api")
                .route("/login", web::post().to(portal::login))
                .route("/logout", web::post().to(portal::logout))
                .route("/me", web::get().to(portal::me))
                .route("/password/forgot", web::post().to(portal::forgot))
                .route("/password/reset", web::post().to(portal::reset))
                .route("/tickets", web::get().to(portal::tickets))
                .route("/tickets", web::post().to(portal::open))
                .route("/tickets/{id}", web::get().to(portal::ticket))
                .route("/tickets/{id}/messages", web::get().to(portal::messages))
                .route("/tickets/{id}/messages", web::post().to(portal::reply))
                .route("/tickets/{id}/close", web::post().to(portal::close))
                .route("/tickets/{id}/rating", web::post().to(portal::rate))
                .service(
                    web::resource("/attachments")
                        .app_data(web::PayloadConfig::new(max_upload))
                        .route(web::post().to(portal::upload)),
                )
                .route("/attachments/{id}", web::get().to(portal::download))
                .default_service(web::to(portal::api_not_found)),
        )
        .route("/portal/auto-login/{token}", web::get().to(portal::auto_login))
        .route("/portal/rate/{token}", web::get().to(portal::rate_link))
        .route("/portal/unsubscribe/{token}", web::get().to(portal::unsubscribe_link))
        .service(openapi::docs())
        .service(
            web::scope("/api/v1")
                .route("/setup", web::get().to(auth::setup_status))
                .route("/setup", web::post().to(auth::setup))
                .route("/auth/login", web::post().to(auth::login))
                .route("/auth/logout", web::post().to(auth::logout))
                .route("/me", web::get().to(auth::me))
                .route("/me/notifications", web::get().to(notifications::list))
                .route("/me/notifications/read-all", web::post().to(notifications::read_all))
                .route("/me/notifications/{id}/read", web::post().to(notifications::read))
                .route("/me/unread", web::get().to(reads::unread))
                .route("/conversations", web::get().to(conversations::list))
                .route("/conversations", web::post().to(conversations::create))
                .route("/conversations/counts", web::post().to(conversations::counts))
                .route("/conversations/{id}", web::get().to(conversations::get))
                .route("/conversations/{id}", web::patch().to(conversations::update))
                .route("/conversations/{id}/merge", web::post().to(conversations::merge))
                .route("/conversations/{id}/messages", web::get().to(conversations::messages))
                .route("/conversations/{id}/messages", web::post().to(conversations::reply))
                .route("/conversations/{id}/messages/{message_id}/source", web::get().to(conversations::message_source))
                .route("/conversations/{id}/messages/{message_id}/retry", web::post().to(delivery::retry))
                .route("/conversations/{id}/notes", web::post().to(conversations::note))
                .route("/conversations/{id}/end", web::post().to(conversations::end))
                .route("/conversations/{id}/mentionable", web::get().to(notifications::mentionable))
                .route("/conversations/{id}/read", web::post().to(reads::mark))
                .route("/conversations/{id}/activity", web::get().to(activity::list))
                .route("/ws", web::get().to(super::ws::connect))
                .route("/custom-channels", web::get().to(custom_channels::list))
                .route("/custom-channels", web::post().to(custom_channels::create))
                .route("/custom-channels/{id}", web::get().to(custom_channels::get))
                .route("/custom-channels/{id}", web::patch().to(custom_channels::update))
                .route("/custom-channels/{id}", web::delete().to(custom_channels::delete))
                .route("/custom-channels/{id}/secret", web::post().to(custom_channels::rotate_secret))
                .route("/custom-channels/{id}/inbound", web::post().to(custom_channels::inbound))
                .route("/custom-channels/{id}/deliveries", web::get().to(custom_channels::deliveries))
                .route("/custom-channels/{id}/deliveries/{delivery}/resend", web::post().to(custom_channels::resend))
                .route("/mattermost-channels", web::get().to(mattermost_channels::list))
                .route("/mattermost-channels", web::post().to(mattermost_channels::create))
                .route("/mattermost-channels/{id}", web::get().to(mattermost_channels::get))
                .route("/mattermost-channels/{id}", web::patch().to(mattermost_channels::update))
                .route("/mattermost-channels/{id}", web::delete().to(mattermost_channels::delete))
                .route("/mattermost-channels/{id}/recipients", web::get().to(mattermost_channels::recipients))
                .route("/mattermost-channels/{id}/conversations", web::post().to(mattermost_channels::outbound))
                .route("/zalo-channels", web::get().to(zalo_channels::list))
                .route("/zalo-channels", web::post().to(zalo_channels::create))
                .route("/zalo-channels/{id}", web::get().to(zalo_channels::get))
                .route("/zalo-channels/{id}", web::patch().to(zalo_channels::update))
                .route("/zalo-channels/{id}", web::delete().to(zalo_channels::delete))
                .route("/zalo-channels/{id}/webhook", web::post().to(zalo_channels::webhook))
                .route("/email-channels", web::get().to(email_channels::list))
                .route("/email-channels", web::post().to(email_channels::create))
                .route("/email-channels/{id}", web::get().to(email_channels::get))
                .route("/email-channels/{id}", web::patch().to(email_channels::update))
                .route("/email-channels/{id}", web::delete().to(email_channels::delete))
                .route("/email-channels/{id}/check", web::post().to(email_channels::check))
                .route("/email-channels/{id}/log", web::get().to(email_channels::log))
                .route("/email-channels/{id}/log/{log_id}/source", web::get().to(email_channels::log_source))
                .route("/customers", web::get().to(customers::search))
                .route("/customers/{id}", web::get().to(customers::get))
                .route("/customers/{id}", web::patch().to(customers::update))
                .route("/customers/{id}/conversations", web::get().to(customers::conversations))
                .route("/customers/{id}/identities", web::post().to(customers::add_identity))
                .route("/customers/{id}/identities/{identity_id}", web::delete().to(customers::remove_identity))
                .route("/customers/{id}/merge", web::post().to(customers::merge))
                .route("/companies", web::get().to(customers::companies))
                .route("/agents", web::get().to(agents::list))
                .route("/agents", web::post().to(agents::create))
                .route("/agents/invitations", web::post().to(onboarding::invite))
                .route("/invitations/{token}", web::get().to(onboarding::get))
                .route("/invitations/{token}", web::post().to(onboarding::accept))
                .route("/onboarding", web::get().to(onboarding::checklist))
                .route("/onboarding/dismiss", web::post().to(onboarding::dismiss))
                .route("/agents/{id}", web::get().to(agents::get))
                .route("/agents/{id}", web::patch().to(agents::update))
                .route("/agents/{id}/channels", web::put().to(agents::set_channels))
                .route("/teams", web::get().to(teams::list))
                .route("/teams", web::post().to(teams::create))
                .route("/teams/{id}", web::get().to(teams::get))
                .route("/teams/{id}", web::patch().to(teams::update))
                .route("/teams/{id}", web::delete().to(teams::delete))
                .route("/teams/{id}/members", web::put().to(teams::set_members))
                .route("/channels", web::get().to(channels::list))
                .route("/channels", web::post().to(channels::create))
                .route("/channels/{id}", web::get().to(channels::get))
                .route("/channels/{id}", web::patch().to(channels::update))
                .route("/channels/{id}", web::delete().to(channels::delete))
                .route("/channels/{id}/deliveries", web::get().to(channels::deliveries))
                .route("/statuses", web::get().to(statuses::list))
                .route("/statuses", web::post().to(statuses::create))
                .route("/statuses/{key}", web::patch().to(statuses::update))
                .route("/statuses/{key}", web::delete().to(statuses::delete))
                .route("/notification-templates", web::get().to(templates::list))
                .route("/notification-templates/{kind}", web::get().to(templates::get))
                .route("/notification-templates/{kind}", web::put().to(templates::save))
                .route("/notification-templates/{kind}", web::delete().to(templates::reset))
                .route("/notification-templates/{kind}/preview", web::post().to(templates::preview))
                .route("/tokens", web::get().to(tokens::list))
                .route("/tokens", web::post().to(tokens::create))
                .route("/tokens/{id}", web::delete().to(tokens::delete))
                .service(
                    web::resource("/attachments")
                        .app_data(web::PayloadConfig::new(max_upload))
                        .route(web::post().to(attachments::upload)),
                )
                .route("/attachments/{id}", web::get().to(attachments::download))
                .route("/audit", web::get().to(audit::list))
                .route("/settings/notifications", web::get().to(notification_settings::get))
                .route("/settings/notifications", web::patch().to(notification_settings::update))
                .default_service(web::to(ops::api_not_found)),
        )
        .default_service(web::to(web_assets::serve));
}

fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(limit).error_handler(move |err, _req| {
        use actix_web::error::JsonPayloadError as E;
        let api = match &err {
            E::Overflow { .. } | E::OverflowKnownLength { .. } => {
                ApiError::PayloadTooLarge(format!("the request body is larger than {limit} bytes"))
            }
            E::ContentType => ApiError::UnsupportedMediaType("send JSON with Content-Type: application/json".into()),
            E::Deserialize(e) if e.is_data() => {
                ApiError::BadRequest { code: "validation_failed", message: e.to_string() }
            }
            E::Deserialize(e) => ApiError::BadRequest { code: "invalid_json", message: e.to_string() },
            other => ApiError::BadRequest { code: "invalid_json", message: other.to_string() },
        };
        api.into()
    })
}
