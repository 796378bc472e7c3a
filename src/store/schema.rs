//! The diesel table definitions, one set for both backends.
//!
//! Written by hand to the lowest common denominator of SQLite and PostgreSQL: ids and counters are
//! `BigInt`, times are `Timestamp` (UTC, no zone), JSON documents are `Text`. Keep it in step with
//! both migration folders; `tests/schema.rs` checks that every column here exists in each database.

diesel::table! {
    counters (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    agents (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
        password_hash -> Nullable<Text>,
        role -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        identity_version -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        token_hash -> Text,
        csrf_token -> Text,
        agent_id -> BigInt,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        agent_id -> BigInt,
        name -> Text,
        token_hash -> Text,
        prefix -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    teams (id) {
        id -> BigInt,
        name -> Text,
        description -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    team_members (team_id, agent_id) {
        team_id -> BigInt,
        agent_id -> BigInt,
    }
}

diesel::table! {
    channel_instances (id) {
        id -> BigInt,
        kind -> Text,
        name -> Text,
        mode -> Text,
        settings -> Text,
        secret -> Nullable<Text>,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        inactivity_timeout_s -> BigInt,
        default_team_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    channel_access (agent_id, channel_instance_id) {
        agent_id -> BigInt,
        channel_instance_id -> BigInt,
    }
}

diesel::table! {
    statuses (id) {
        id -> BigInt,
        key -> Text,
        name -> Text,
        base -> Text,
        required_fields -> Text,
        builtin -> Bool,
        position -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    companies (id) {
        id -> BigInt,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    customers (id) {
        id -> BigInt,
        name -> Text,
        company_id -> Nullable<BigInt>,
        owner_agent_id -> Nullable<BigInt>,
        notes -> Text,
        custom_fields -> Text,
        merged_into_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        department -> Text,
        location -> Text,
    }
}

diesel::table! {
    customer_identities (id) {
        id -> BigInt,
        customer_id -> BigInt,
        kind -> Text,
        channel_instance_id -> Nullable<BigInt>,
        value -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    conversations (id) {
        id -> BigInt,
        number -> BigInt,
        channel_instance_id -> BigInt,
        customer_id -> BigInt,
        mode -> Text,
        status -> Text,
        assignee_id -> Nullable<BigInt>,
        team_id -> Nullable<BigInt>,
        priority -> Text,
        subject -> Text,
        custom_fields -> Text,
        last_seq -> BigInt,
        merged_into_id -> Nullable<BigInt>,
        inactivity_deadline -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        first_response_at -> Nullable<Timestamp>,
        last_customer_activity_at -> Nullable<Timestamp>,
        last_agent_activity_at -> Nullable<Timestamp>,
        ended_at -> Nullable<Timestamp>,
        closed_at -> Nullable<Timestamp>,
        waiting_since -> Nullable<Timestamp>,
        csat -> Nullable<Text>,
    }
}

diesel::table! {
    conversation_tags (conversation_id, tag) {
        conversation_id -> BigInt,
        tag -> Text,
    }
}

diesel::table! {
    messages (id) {
        id -> BigInt,
        conversation_id -> BigInt,
        seq -> BigInt,
        direction -> Text,
        source -> Text,
        author_agent_id -> Nullable<BigInt>,
        author_customer_id -> Nullable<BigInt>,
        body_text -> Text,
        body_html -> Nullable<Text>,
        quoted_message_id -> Nullable<BigInt>,
        channel_instance_id -> BigInt,
        provider_message_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    attachments (id) {
        id -> BigInt,
        message_id -> Nullable<BigInt>,
        uploaded_by -> Nullable<BigInt>,
        file_name -> Text,
        mime_type -> Text,
        size_bytes -> BigInt,
        sha256 -> Text,
        storage_key -> Text,
        content_id -> Nullable<Text>,
        created_at -> Timestamp,
        uploaded_by_customer -> Nullable<BigInt>,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        delivery_id -> Text,
        channel_instance_id -> BigInt,
        conversation_id -> Nullable<BigInt>,
        message_id -> Nullable<BigInt>,
        kind -> Text,
        payload -> Text,
        state -> Text,
        attempts -> BigInt,
        next_attempt_at -> Timestamp,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
        locked_until -> Nullable<Timestamp>,
        updated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        actor_kind -> Text,
        actor_id -> Nullable<BigInt>,
        action -> Text,
        entity_type -> Text,
        entity_id -> Nullable<BigInt>,
        details -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    leases (name) {
        name -> Text,
        holder -> Text,
        expires_at -> Timestamp,
    }
}

diesel::joinable!(sessions -> agents (agent_id));
diesel::joinable!(api_tokens -> agents (agent_id));
diesel::joinable!(team_members -> teams (team_id));
diesel::joinable!(team_members -> agents (agent_id));
diesel::joinable!(channel_access -> channel_instances (channel_instance_id));
diesel::joinable!(customer_identities -> customers (customer_id));
diesel::joinable!(conversations -> channel_instances (channel_instance_id));
diesel::joinable!(conversations -> customers (customer_id));
diesel::joinable!(conversation_tags -> conversations (conversation_id));
diesel::joinable!(messages -> conversations (conversation_id));
diesel::joinable!(outbox -> channel_instances (channel_instance_id));

diesel::allow_tables_to_appear_in_same_query!(
    counters,
    agents,
    sessions,
    api_tokens,
    teams,
    team_members,
    channel_instances,
    channel_access,
    statuses,
    companies,
    customers,
    customer_identities,
    conversations,
    conversation_tags,
    messages,
    attachments,
    outbox,
    audit_log,
    events,
    conversation_subscribers,
    mail_sources,
    mail_log,
    mailbox_state,
    mailbox_seen,
    mattermost_state,
    mattermost_links,
    zalo_tokens,
    zalo_events,
    zalo_sent,
    message_receipts,
    conversation_reads,
);

diesel::table! {
    conversation_subscribers (conversation_id, email) {
        conversation_id -> BigInt,
        email -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    mail_sources (message_id) {
        message_id -> BigInt,
        storage_key -> Nullable<Text>,
        content -> Nullable<Binary>,
        size_bytes -> BigInt,
        from_address -> Text,
        recipients -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    mail_log (id) {
        id -> BigInt,
        channel_instance_id -> BigInt,
        message_id_header -> Text,
        from_address -> Text,
        subject -> Text,
        outcome -> Text,
        reason -> Text,
        storage_key -> Nullable<Text>,
        content -> Nullable<Binary>,
        size_bytes -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    mailbox_state (channel_instance_id) {
        channel_instance_id -> BigInt,
        consecutive_failures -> BigInt,
        last_error -> Nullable<Text>,
        last_checked_at -> Nullable<Timestamp>,
        last_success_at -> Nullable<Timestamp>,
        imported_total -> BigInt,
    }
}

diesel::table! {
    mailbox_seen (channel_instance_id, mail_key) {
        channel_instance_id -> BigInt,
        mail_key -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    events (id) {
        id -> BigInt,
        conversation_id -> BigInt,
        channel_instance_id -> BigInt,
        kind -> Text,
        seq -> Nullable<BigInt>,
        message_id -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    change_feed (id) {
        id -> BigInt,
        consumer -> Text,
        event_id -> BigInt,
        conversation_id -> BigInt,
        kind -> Text,
        created_at -> Timestamp,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    mattermost_state (channel_instance_id) {
        channel_instance_id -> BigInt,
        state -> Text,
        reason -> Nullable<Text>,
        last_create_at -> BigInt,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    mattermost_links (channel_instance_id, place) {
        channel_instance_id -> BigInt,
        place -> Text,
        conversation_id -> BigInt,
        mm_channel_id -> Text,
        root_id -> Text,
    }
}

diesel::table! {
    zalo_tokens (channel_instance_id) {
        channel_instance_id -> BigInt,
        access_token -> Text,
        refresh_token -> Text,
        expires_at -> Nullable<Timestamp>,
        refreshing_until -> Nullable<Timestamp>,
        generation -> BigInt,
        state -> Text,
        reason -> Nullable<Text>,
        state_since -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    zalo_events (id) {
        id -> BigInt,
        channel_instance_id -> BigInt,
        dedupe_key -> Text,
        zalo_user_id -> Text,
        event_name -> Text,
        body -> Text,
        received_at -> Timestamp,
        processed_at -> Nullable<Timestamp>,
        attempts -> BigInt,
        next_attempt_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    message_receipts (message_id) {
        message_id -> BigInt,
        state -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    zalo_sent (channel_instance_id, zalo_msg_id) {
        channel_instance_id -> BigInt,
        zalo_msg_id -> Text,
        message_id -> BigInt,
        part -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    agent_invitations (id) {
        id -> BigInt,
        agent_id -> BigInt,
        token_hash -> Text,
        invited_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    agent_notifications (id) {
        id -> BigInt,
        agent_id -> BigInt,
        kind -> Text,
        conversation_id -> BigInt,
        message_id -> Nullable<BigInt>,
        actor_kind -> Text,
        actor_id -> Nullable<BigInt>,
        actor_name -> Text,
        excerpt -> Text,
        created_at -> Timestamp,
        read_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    message_mentions (message_id, agent_id) {
        message_id -> BigInt,
        agent_id -> BigInt,
    }
}

diesel::joinable!(agent_notifications -> conversations (conversation_id));
diesel::allow_tables_to_appear_in_same_query!(agent_notifications, conversations);
diesel::allow_tables_to_appear_in_same_query!(agent_notifications, customers);

diesel::table! {
    conversation_reads (agent_id, conversation_id) {
        agent_id -> BigInt,
        conversation_id -> BigInt,
        last_read_seq -> BigInt,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    notification_templates (kind) {
        kind -> Text,
        subject -> Text,
        body -> Text,
        updated_by -> Nullable<BigInt>,
        updated_at -> Timestamp,
    }
}

// Issue #18 items 2 and 3: the email notification settings (one row, id 1) and the welcome mails sent (NT-13).
diesel::table! {
    notification_settings (id) {
        id -> BigInt,
        enabled -> Bool,
        ticket_closed -> Bool,
        ticket_confirmation -> Bool,
        new_ticket_admins -> Bool,
        new_ticket_category -> Bool,
        customer_update_category -> Bool,
        kb_article_category -> Bool,
        ticket_taken_category -> Bool,
        include_attachments -> Bool,
        auto_login_links -> Bool,
        cc_subscribers -> Bool,
        customer_updates_technicians_only -> Bool,
        welcome_email -> Bool,
        updated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    customer_welcomes (customer_id) {
        customer_id -> BigInt,
        created_at -> Timestamp,
    }
}

// Issue #18: customer accounts, portal sessions, password resets and ratings (`store::portal`).
diesel::table! {
    customer_accounts (customer_id) {
        customer_id -> BigInt,
        password_hash -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    customer_password_resets (id) {
        id -> BigInt,
        customer_id -> BigInt,
        email -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    customer_sessions (id) {
        id -> BigInt,
        token_hash -> Text,
        csrf_token -> Text,
        customer_id -> BigInt,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    conversation_ratings (conversation_id) {
        conversation_id -> BigInt,
        customer_id -> BigInt,
        rating -> Text,
        rated_at -> Timestamp,
        changed_at -> Timestamp,
    }
}

diesel::joinable!(customer_sessions -> customers (customer_id));
diesel::joinable!(customer_accounts -> customers (customer_id));
diesel::joinable!(conversation_ratings -> conversations (conversation_id));
diesel::allow_tables_to_appear_in_same_query!(customer_sessions, customers);
diesel::allow_tables_to_appear_in_same_query!(customer_accounts, customers);
diesel::allow_tables_to_appear_in_same_query!(customer_accounts, customer_identities);
diesel::allow_tables_to_appear_in_same_query!(conversation_ratings, conversations);
diesel::allow_tables_to_appear_in_same_query!(conversation_ratings, customers);
diesel::allow_tables_to_appear_in_same_query!(conversation_ratings, channel_instances);
