// The agent socket (GET /api/v1/ws): connect, keep the newest resume cursor from every frame
// that carries one, and after a drop reconnect with backoff, resuming with `?cursor=` so the
// server replays exactly what was missed (RT-7). It knows nothing of the UI: frames and
// connection states go to the handlers it is given. Two close codes end the reconnecting
// (docs/realtime.md): 4001, the credential ended (signed out elsewhere, password changed, token
// revoked, deactivated), and 4003, the agent's role changed.

import type { ServerFrame } from './types';

export type ConnState = 'idle' | 'connecting' | 'live' | 'resuming' | 'reconnecting' | 'paused';

export interface LiveHandlers {
  frame(f: ServerFrame): void;
  state(s: ConnState, attempt: number, retryAt: number | null): void;
  /** After `hello`: `fresh` when there was no cursor to resume from (reload what is on screen). */
  hello(fresh: boolean, f: Extract<ServerFrame, { type: 'hello' }>): void;
  /** The server could not replay (`resync`): reload everything. */
  resync(): void;
  /** Upgrades keep failing and the session is gone. */
  authLost(): void;
  /** The server closed the socket because its credential ended (4001): do not reconnect. */
  credentialsEnded(): void;
  /** The server closed the socket because the agent's role changed (4003). */
  roleChanged(): void;
  probeAuth(): Promise<boolean>;
}

const PING_EVERY_MS = 15_000;
/** Close codes of docs/realtime.md ("When who you are changes"). */
const CREDENTIALS_ENDED = 4001;
const ROLE_CHANGED = 4003;
const SILENCE_LIMIT_MS = 45_000;

export class Live {
  private ws: WebSocket | null = null;
  private cursor: string | null = null;
  private attempt = 0;
  private failuresWithoutHello = 0;
  private retryTimer: number | undefined;
  private pingTimer: number | undefined;
  private running = false;
  private gotHello = false;
  private resuming = false;
  private lastHeard = 0;

  constructor(private h: LiveHandlers) {
    window.addEventListener('online', () => this.retryNow());
    // The browser knows the network is gone before the socket does: say so at once (issue #17 item 11).
    window.addEventListener('offline', () => this.lost());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.retryNow();
    });
  }

  get currentCursor() {
    return this.cursor;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.h.state(this.cursor ? 'reconnecting' : 'connecting', 0, null);
    this.open();
    this.pingTimer = window.setInterval(() => this.heartbeat(), PING_EVERY_MS);
  }

  /** Close on purpose (sign out, or the agent sets themself offline). The cursor is kept. */
  stop(state: ConnState = 'idle') {
    this.running = false;
    window.clearTimeout(this.retryTimer);
    window.clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, 'bye');
    this.h.state(state, 0, null);
  }

  /** Forget the cursor (a different agent signs in). */
  reset() {
    this.cursor = null;
  }

  send(frame: object): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.gotHello) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  private open() {
    window.clearTimeout(this.retryTimer);
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${proto}//${location.host}/api/v1/ws` + (this.cursor ? '?cursor=' + encodeURIComponent(this.cursor) : '');
    this.resuming = this.cursor !== null;
    this.gotHello = false;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch {
      this.dropped();
      return;
    }
    this.ws = ws;
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.lastHeard = Date.now();
      let f: ServerFrame;
      try {
        f = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      this.handle(f);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (ev.code === CREDENTIALS_ENDED || ev.code === ROLE_CHANGED) {
        // Reconnecting would be refused (4001) or act on a stale picture of the agent (4003).
        this.stop('idle');
        if (ev.code === CREDENTIALS_ENDED) this.h.credentialsEnded();
        else this.h.roleChanged();
        return;
      }
      this.dropped();
    };
  }

  private handle(f: ServerFrame) {
    switch (f.type) {
      case 'hello': {
        this.gotHello = true;
        this.attempt = 0;
        this.failuresWithoutHello = 0;
        // A resuming socket keeps our cursor: the hello's is the server's "now".
        if (!this.resuming) this.cursor = f.cursor;
        this.h.state(this.resuming ? 'resuming' : 'live', 0, null);
        this.h.hello(!this.resuming, f);
        break;
      }
      case 'resumed':
        this.cursor = f.cursor;
        this.resuming = false;
        this.h.state('live', 0, null);
        break;
      case 'resync':
        this.cursor = f.cursor;
        this.resuming = false;
        this.h.resync();
        this.h.state('live', 0, null);
        break;
      case 'error':
        if (f.cursor) this.cursor = f.cursor;
        break;
      default:
        if ('cursor' in f && typeof f.cursor === 'string') this.cursor = f.cursor;
    }
    this.h.frame(f);
  }

  private dropped() {
    if (!this.running) return;
    if (!this.gotHello) this.failuresWithoutHello++;
    this.gotHello = false;
    this.attempt++;
    // 0.3 s, then doubling up to 8 s, with some jitter so a restarted server is not hit by
    // every tab at the same instant.
    const base = Math.min(8000, 300 * 2 ** Math.min(this.attempt - 1, 5));
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.h.state('reconnecting', this.attempt, Date.now() + delay);
    this.retryTimer = window.setTimeout(() => this.retry(), delay);
  }

  private async retry() {
    if (!this.running) return;
    if (this.failuresWithoutHello >= 3 && this.failuresWithoutHello % 3 === 0) {
      // Several refused upgrades in a row: maybe the session expired rather than the network.
      const ok = await this.h.probeAuth().catch(() => true);
      if (!ok) {
        this.stop('idle');
        this.h.authLost();
        return;
      }
    }
    if (this.running) this.open();
  }

  private retryNow() {
    if (this.running && !this.ws) {
      window.clearTimeout(this.retryTimer);
      this.open();
    }
  }

  /** The connection is gone (the network went away): reconnect instead of showing "Live" on a dead socket. */
  private lost() {
    const ws = this.ws;
    if (!this.running || !ws) return;
    this.ws = null;
    ws.close();
    this.dropped();
  }

  private heartbeat() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastHeard > SILENCE_LIMIT_MS) {
      // A half-open connection: give up on it and reconnect.
      this.ws = null;
      ws.close();
      this.dropped();
      return;
    }
    ws.send('{"type":"ping"}');
  }
}
