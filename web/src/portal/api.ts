// The portal's client for /portal/api (issue #18): JSON in and out, the customer session's CSRF token on every
// state-changing request, one error type with the server's stable code. The session itself is the HttpOnly
// `sb_customer` cookie; this page never sees it.

export interface PortalCustomer {
  id: number;
  name: string;
  company: string | null;
  department: string;
  location: string;
  emails: string[];
}

export interface PortalMe {
  customer: PortalCustomer;
  csrf_token: string;
}

export type TicketState = 'open' | 'pending' | 'closed';
export type Rating = 'good' | 'average' | 'bad';

export interface PortalTicket {
  id: number;
  number: number;
  subject: string;
  status: string;
  state: TicketState;
  via: string;
  csat: Rating | null;
  created_at: string;
  updated_at: string;
  closed_at: string | null;
}

export interface PortalAttachment {
  id: number;
  file_name: string;
  mime_type: string;
  size_bytes: number;
  url: string;
}

export interface PortalMessage {
  id: number;
  seq: number;
  from: 'customer' | 'agent';
  author: string;
  text: string;
  created_at: string;
  attachments: PortalAttachment[];
}

export interface PortalPosted {
  ticket: PortalTicket;
  message: PortalMessage;
}

export class PortalError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrf: string | null = null;

export function setCsrf(token: string | null) {
  csrf = token;
}

async function request<T>(method: 'GET' | 'POST', path: string, body?: unknown, file?: File): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  let payload: BodyInit | undefined;
  if (file) {
    payload = file;
    headers['Content-Type'] = file.type || 'application/octet-stream';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  let res: Response;
  try {
    res = await fetch('/portal/api' + path, { method, headers, body: payload, credentials: 'same-origin' });
  } catch {
    throw new PortalError(0, 'network', 'Cannot reach the server. Check your connection and try again.');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    throw new PortalError(res.status, data?.error ?? 'error', data?.message ?? `The server answered ${res.status}.`);
  }
  return data as T;
}

export const api = {
  me: () => request<PortalMe>('GET', '/me'),
  login: (email: string, password: string) => request<PortalMe>('POST', '/login', { email, password }),
  logout: () => request<void>('POST', '/logout'),
  forgot: (email: string) => request<{ message: string }>('POST', '/password/forgot', { email }),
  reset: (token: string, password: string) => request<PortalMe>('POST', '/password/reset', { token, password }),
  tickets: () => request<PortalTicket[]>('GET', '/tickets'),
  ticket: (id: number) => request<PortalTicket>('GET', `/tickets/${id}`),
  messages: (id: number) => request<PortalMessage[]>('GET', `/tickets/${id}/messages`),
  open: (subject: string, content: string, attachment_ids: number[]) =>
    request<PortalPosted>('POST', '/tickets', { subject, content, attachment_ids }),
  reply: (id: number, content: string, attachment_ids: number[]) =>
    request<PortalPosted>('POST', `/tickets/${id}/messages`, { content, attachment_ids }),
  close: (id: number) => request<PortalTicket>('POST', `/tickets/${id}/close`),
  rate: (id: number, rating: Rating) => request<PortalTicket>('POST', `/tickets/${id}/rating`, { rating }),
  upload: (file: File) =>
    request<PortalAttachment>('POST', `/attachments?file_name=${encodeURIComponent(file.name)}`, undefined, file),
};
