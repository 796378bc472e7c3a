// The API's JSON shapes (src/http/views.rs) and the socket frames (src/realtime/session.rs).

export type Role = 'super_admin' | 'admin' | 'agent';

export interface Agent {
  id: number;
  email: string;
  name: string;
  role: Role;
  active: boolean;
  /** False until the agent set a password (an invitation not yet accepted). */
  has_password?: boolean;
  channel_ids: number[];
  team_ids: number[];
  created_at: string;
  updated_at: string;
}

export interface Me {
  agent: Agent;
  csrf_token: string | null;
  all_channels: boolean;
}

export interface Team {
  id: number;
  name: string;
  description: string;
  member_ids: number[];
  created_at: string;
}

/** A customer's satisfaction rating of a ticket (HD-12). */
export type Csat = 'good' | 'average' | 'bad';

/** Kinds a stored channel may have (#14 item 12; `web`: the customer portal's channel, issue #18). */
export type ChannelKind = 'email' | 'mattermost' | 'zalo' | 'custom' | 'web';
/** The kinds an admin may add: those with a working connector (the server's ChannelKind::OFFERED). */
export type OfferedKind = 'custom' | 'email' | 'mattermost' | 'zalo';
export const OFFERED_KINDS: readonly OfferedKind[] = ['custom', 'email', 'mattermost', 'zalo'];

export interface Channel {
  id: number;
  kind: ChannelKind;
  name: string;
  mode: 'sync' | 'async';
  settings: Record<string, unknown> | null;
  enabled: boolean;
  disabled_reason: string | null;
  inactivity_timeout_s: number;
  default_team_id: number | null;
  created_at: string;
  updated_at: string;
}

// Mailboxes (src/http/handlers/email_channels.rs): passwords are write-only, `password_set` says
// whether one is stored.
export type MailProtocol = 'imap' | 'pop3';
export type TlsMode = 'implicit' | 'starttls' | 'none';

export interface SmtpSettings {
  host: string;
  port: number;
  tls: TlsMode;
  tls_insecure: boolean;
  username: string | null;
  password_set: boolean;
  from_address: string;
  from_name: string | null;
  reply_to: string | null;
  use_from_name_for_all: boolean;
}

export interface MailboxHealth {
  running: boolean;
  consecutive_failures: number;
  last_error: string | null;
  last_checked_at: string | null;
  last_success_at: string | null;
  imported_total: number;
}

export interface EmailChannel {
  id: number;
  name: string;
  protocol: MailProtocol;
  host: string;
  port: number;
  tls: TlsMode;
  tls_insecure: boolean;
  username: string;
  password_set: boolean;
  folder: string;
  poll_interval_s: number;
  after_import: 'mark_read' | 'delete';
  address: string | null;
  accept_unknown_senders: boolean;
  subscribe_recipients: boolean;
  extract_forwarded_sender: boolean;
  default_team_id: number | null;
  enabled: boolean;
  disabled_reason: string | null;
  smtp: SmtpSettings;
  health: MailboxHealth;
  created_at: string;
}

/** MM-7: one conversation per Mattermost channel (group) or per customer post and its thread (thread). */
export type MattermostMode = 'group' | 'thread';

/** A Mattermost bot (`/mattermost-channels`); its token is never sent back. */
export interface MattermostChannel {
  id: number;
  name: string;
  server_url: string;
  bot_user_id: string;
  bot_username: string;
  mention_only: boolean;
  mode: MattermostMode;
  default_team_id: number | null;
  /** The Mattermost team whose members and channels "new conversation" offers (MM-12). */
  mattermost_team_id: string | null;
  inactivity_timeout_s: number;
  enabled: boolean;
  /** connected, reconnecting or needs_attention (with `state_reason`). */
  state: string;
  state_reason: string | null;
  state_since: string | null;
  created_at: string;
}

/** A Zalo Official Account (`/zalo-channels`, docs/zalo.md). The app secret, the OA secret key and the tokens are
 *  write-only: never sent back. */
export interface ZaloChannel {
  id: number;
  name: string;
  app_id: string;
  api_base_url: string;
  oauth_base_url: string;
  /** Where Zalo posts its events: pasted into Zalo's developer console (ZL-2). */
  webhook_url: string;
  /** Zalo's domain-verification file, served at the root of the server's public URL (ZL-2). Its content is not
   *  sent back. */
  domain_verification: { file_name: string; url: string } | null;
  default_team_id: number | null;
  inactivity_timeout_s: number;
  enabled: boolean;
  /** connected or needs_attention (with `state_reason`, e.g. a refused token refresh, or no tokens yet). */
  state: string;
  state_reason: string | null;
  state_since: string | null;
  /** When the stored access token expires (null: unknown; it is refreshed an hour before). */
  access_token_expires_at: string | null;
  /** Webhook events stored and not yet processed. */
  events_pending: number;
  created_at: string;
}

/** Who a new conversation from a Mattermost bot may go to (MM-12). */
export interface MattermostRecipient {
  kind: 'member' | 'channel';
  id: string;
  label: string;
}

/** Mail a mailbox received that made no ticket (EM-8, EM-12). */
export interface MailLogEntry {
  id: number;
  message_id: string;
  from_address: string;
  subject: string;
  outcome: 'junk' | 'rejected' | 'unparseable';
  reason: string;
  size_bytes: number;
  created_at: string;
}

export interface Status {
  key: string;
  name: string;
  base: 'open' | 'pending' | 'closed';
  required_fields: string[];
  builtin: boolean;
  position: number;
}

export type Priority = 'low' | 'normal' | 'high' | 'urgent';

export interface Conversation {
  id: number;
  number: number;
  channel_id: number;
  channel_kind: ChannelKind;
  customer_id: number;
  customer_name: string;
  mode: 'sync' | 'async';
  status: string;
  assignee_id: number | null;
  team_id: number | null;
  priority: Priority;
  subject: string;
  tags: string[];
  custom_fields: Record<string, unknown>;
  last_seq: number;
  merged_into_id: number | null;
  active_chat: boolean;
  inactivity_deadline: string | null;
  created_at: string;
  updated_at: string;
  first_response_at: string | null;
  last_customer_activity_at: string | null;
  last_agent_activity_at: string | null;
  ended_at: string | null;
  closed_at: string | null;
  /** Since when the customer waits for an answer (their last message no reply followed), or null (issue #17). */
  waiting_since: string | null;
  /** The customer's rating (HD-12, issue #18): from the rating links of the "ticket closed" mail or the portal. */
  csat: Csat | null;
  /** List responses only: the newest customer message or reply as plain text, cut (never an internal note). */
  last_message_preview?: string;
  /** List responses only: who wrote the preview's message, the customer (`in`) or the business (`out`). */
  last_message_direction?: 'in' | 'out';
  /** List responses only: the agent who wrote the preview's reply, if an agent did. */
  last_message_agent_id?: number;
  /** The caller's unread customer messages (list and get answers only; not in socket frames). */
  unread?: number;
}

export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  per_page: number;
}

export interface Attachment {
  id: number;
  file_name: string;
  mime_type: string;
  size: number;
  url: string;
}

export interface Author {
  kind: 'customer' | 'agent' | 'system';
  id: number | null;
  name: string;
}

/** Where an outgoing message is on its way to the customer (any channel with a sender): pending/sent/failed from
 *  the outbox, delivered/read from the channel's receipts (Zalo). */
export type DeliveryState = 'pending' | 'sent' | 'failed' | 'delivered' | 'read';

export interface Delivery {
  state: DeliveryState;
  /** Why it failed (the channel's or the receiver's words), when `state` is failed. */
  error: string | null;
  updated_at: string;
}

export interface Message {
  id: number;
  conversation_id: number;
  seq: number;
  direction: 'in' | 'out' | 'note';
  source: string;
  author: Author;
  content: string;
  content_html: string | null;
  quoted_message_id: number | null;
  external_message_id: string | null;
  attachments: Attachment[];
  /** Outgoing messages sent through the outbox; null for the rest. */
  delivery: Delivery | null;
  /** The agents an internal note @mentions (#17). */
  mentions?: Mention[];
  created_at: string;
}

/** An agent a note mentions, or who may be mentioned (#17). */
export interface Mention {
  agent_id: number;
  name: string;
}

export type NotificationKind = 'assigned' | 'mentioned' | 'customer_replied' | 'chat_waiting';

/** One of the agent's notifications (GET /me/notifications, the `notification` frame; #17). */
export interface AgentNotification {
  id: number;
  kind: NotificationKind;
  conversation_id: number;
  conversation_number: number;
  subject: string;
  customer_name: string;
  message_id: number | null;
  actor: { kind: 'agent' | 'customer' | 'system'; id: number | null; name: string };
  excerpt: string;
  created_at: string;
  read_at: string | null;
}

export interface MessageCreated {
  message_id: number;
  conversation_id: number;
  seq: number;
  message: Message;
  conversation: Conversation;
}

export interface ConversationCreated {
  conversation_id: number;
  number: number;
  user_id: number;
  status: string;
  mode: string;
  message_id: number;
  created: boolean;
  conversation: Conversation;
}

export interface Identity {
  id: number;
  kind: 'external' | 'email' | 'phone';
  channel_id: number | null;
  value: string;
}

export interface Customer {
  id: number;
  name: string;
  company: { id: number; name: string } | null;
  owner_agent_id: number | null;
  notes: string;
  custom_fields: Record<string, unknown>;
  merged_into_id: number | null;
  identities: Identity[];
  created_at: string;
  updated_at: string;
}

export interface CustomerSummary {
  id: number;
  name: string;
  company_id: number | null;
  created_at: string;
}

export interface Token {
  id: number;
  agent_id: number;
  name: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
}

/** A row of a channel's delivery log (the outbox, Deliveries page). */
export interface DeliveryLogEntry {
  id: number;
  delivery_id: string;
  conversation_id: number | null;
  /** The conversation's number (`#1042`), the one agents see. */
  conversation_number?: number;
  message_id: number | null;
  kind: string;
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: string;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
}

export interface Setup {
  needs_admin: boolean;
  command: string;
}

export type Presence = 'online' | 'away' | 'offline';

export interface Who {
  agent_id: number;
  name: string;
}

// Frames the server sends on the agent socket.
export type ServerFrame =
  | { type: 'hello'; agent_id: number; socket: string; cursor: string; presence: (Who & { status: Presence })[] }
  | {
      type: 'message.created' | 'message.updated' | 'conversation.created' | 'conversation.updated' | 'conversation.ended';
      event_id: number;
      conversation_id: number;
      seq: number | null;
      cursor: string;
      conversation: Conversation;
      message?: Message;
    }
  | { type: 'presence'; agent_id: number; name: string; status: Presence }
  | { type: 'collision'; conversation_id: number; viewing: Who[]; replying: Who[] }
  | { type: 'typing'; conversation_id: number; who: 'customer' | Who; state: 'start' | 'stop' }
  | { type: 'pong' }
  | { type: 'read'; conversation_id: number; last_read_seq: number; unread: number }
  | { type: 'resumed'; replayed: number; cursor: string }
  | { type: 'resync'; message: string; cursor: string }
  | { type: 'error'; error: string; message: string; cursor?: string }
  | { type: 'notification'; notification: AgentNotification; unread_count: number }
  | { type: 'notifications.read'; ids: number[]; all: boolean; unread_count: number };

export type EventFrame = Extract<ServerFrame, { event_id: number }>;
