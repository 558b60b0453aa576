import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type { Config } from '../config.js';
import type { MailOutbox } from '../store/ports.js';
import type { QueuedMail } from '../store/types.js';
import { randomId, randomToken, seal, unseal } from '../util/crypto.js';
import { privateDir } from '../util/private-files.js';

/** One mail, already rendered; `links` are what a development outbox prints in the log. */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
  links: string[];
}

/** Where mails leave the server: an SMTP server, or the outbox folder in development. */
export interface MailTransport {
  readonly kind: 'smtp' | 'outbox';
  send(from: string, message: MailMessage): Promise<void>;
  close(): void;
}

/** The log the queue reports to (the server's pino logger once the app is built). */
export interface MailLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

const NO_LOG: MailLog = { info() {}, warn() {} };

/** SMTP through nodemailer, from `smtp://user:pass@host:port` or `smtps://…`. */
export function smtpTransport(url: string): MailTransport {
  // Bounded waits, so a send ends well within its lease (LEASE_MS) even against a stalled server.
  const transport = nodemailer.createTransport({
    url,
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    socketTimeout: 60_000,
  });
  transport.set('disableFileAccess', true);
  transport.set('disableUrlAccess', true);
  return {
    kind: 'smtp',
    async send(from, m) {
      await transport.sendMail({ from, to: m.to, subject: m.subject, text: m.text, html: m.html });
    },
    close: () => transport.close(),
  };
}

/**
 * The development default: every mail written to `dir` as an .eml file (owner-only), and, with
 * `printLinks`, its links printed in the log, so a server with no mail server is still usable end
 * to end. A link carries a one-time token (a password reset, an address change), so a server
 * whose log others may read, one with an https issuer, keeps them to the owner-only file.
 */
export function outboxTransport(dir: string, log: () => MailLog, printLinks: boolean): MailTransport {
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  return {
    kind: 'outbox',
    async send(from, m) {
      const info = await transport.sendMail({
        from,
        to: m.to,
        subject: m.subject,
        text: m.text,
        html: m.html,
      });
      privateDir(dir);
      const file = path.join(dir, `${Date.now()}-${randomBytes(4).toString('hex')}.eml`);
      writeFileSync(file, info.message as Buffer, { mode: 0o600, flag: 'wx' });
      log().info(
        printLinks
          ? { to: m.to, subject: m.subject, links: m.links, file }
          : { to: m.to, subject: m.subject, file },
        'mail written to the outbox',
      );
    },
    close: () => transport.close(),
  };
}

/** What /readyz and /metrics say of the queue. */
export interface MailQueueState {
  transport: MailTransport['kind'];
  /** Mails waiting to be sent (being retried, or just queued), by every instance of the deployment. */
  queued: number;
  /** Some waiting mail has failed at least once and waits to be retried. */
  retrying: boolean;
  /** Since this instance started: mails it sent, attempts that failed, mails it gave up. */
  sent: number;
  failedAttempts: number;
  dropped: number;
}

/**
 * How long a claimed mail is this instance's to send. It outlasts the SMTP transport's own
 * timeouts, so no other instance takes a mail while a send of it may still finish; a mail claimed
 * by an instance that stopped mid-send is taken by another once its lease ends.
 */
const LEASE_MS = 10 * 60_000;
const MAX_BACKOFF_MS = 60 * 60_000;

export interface MailQueueOptions {
  from: string;
  /** First wait after a failure; it doubles, up to an hour. Also how often the store is looked at. */
  retryMs: number;
  /** A mail failing this long after it was queued is given up (its links are dead by then). */
  giveUpMs?: number;
}

/**
 * Mail goes out through this queue, never in the request: a request that sends a mail only
 * stores it, so a mail server that is slow or down neither delays nor fails the request. The
 * queue lives in the store (MailOutbox), each mail sealed with AES-256-GCM under `key` (derived
 * from the server secret) and bound to its row, and leaves it once sent or given up; a restart
 * loses nothing, and every instance drains the one queue, the oldest due mail first. A failure keeps the mail and retries it after a wait that doubles (from `retryMs`, at
 * most an hour) until it goes out or has failed for `giveUpMs`; meanwhile this instance sends
 * nothing else, as the mail server is likely down. Besides sending what it queues, each instance
 * looks for due mails every `retryMs` (those another instance left, or queued before a restart).
 */
export class MailQueue {
  log: MailLog = NO_LOG;
  /** The pump going now, if one is. */
  private running: Promise<void> | undefined;
  /** A pump was asked for while one ran: it goes round again. */
  private again = false;
  private paused: NodeJS.Timeout | undefined;
  private poller: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly sentCounts = { sent: 0, failedAttempts: 0, dropped: 0 };
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly transport: MailTransport,
    private readonly store: MailOutbox,
    private readonly key: Buffer,
    private readonly options: MailQueueOptions,
  ) {}

  /**
   * Starts sending: what is waiting now (left by an earlier start, say), each mail queued from
   * here on, and whatever is due when the store is looked at again. Until then mails only wait.
   */
  start(): void {
    if (this.poller || this.closed) return;
    this.poller = setInterval(() => this.kick(), this.options.retryMs);
    this.poller.unref();
    this.kick();
  }

  /**
   * The queue the configuration names: SMTP when TESSERA_SMTP_URL is set, else the outbox folder,
   * whose links reach the log only with an http (development) issuer.
   */
  static fromConfig(
    config: Pick<Config, 'smtpUrl' | 'mailFrom' | 'mailRetrySeconds' | 'dataDir' | 'issuer'>,
    store: MailOutbox,
    key: Buffer,
  ): MailQueue {
    let queue: MailQueue | undefined;
    const transport = config.smtpUrl
      ? smtpTransport(config.smtpUrl)
      : outboxTransport(
          path.join(config.dataDir, 'outbox'),
          () => queue?.log ?? NO_LOG,
          new URL(config.issuer).protocol === 'http:',
        );
    queue = new MailQueue(transport, store, key, {
      from: config.mailFrom,
      retryMs: config.mailRetrySeconds * 1000,
    });
    return queue;
  }

  /**
   * Stores the mail, sealed; resolves once it is in the store (rejects when the store is down).
   * Stored even once the queue is closed: the next start sends it.
   */
  async enqueue(message: MailMessage): Promise<void> {
    const id = randomId();
    const sealed = seal(Buffer.from(JSON.stringify(message)), this.key, id);
    await this.store.queueMail({ id, sealed, queuedAt: Date.now() });
    this.kick();
  }

  /** What this instance did since it started. */
  get counts(): Pick<MailQueueState, 'sent' | 'failedAttempts' | 'dropped'> {
    return { ...this.sentCounts };
  }

  /** The queue in the store, and this instance's counts. */
  async state(): Promise<MailQueueState> {
    const { queued, retrying } = await this.store.countMail();
    return { transport: this.transport.kind, queued, retrying: retrying > 0, ...this.sentCounts };
  }

  /** Resolves once nothing is queued and this instance is not sending, or it is closed or not started (tests). */
  async idle(): Promise<void> {
    while (this.poller && !this.closed) {
      if (!this.running && !this.paused && (await this.store.countMail()).queued === 0) return;
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  /** Sends what is due, unless a failure has paused this instance. */
  private kick(): void {
    if (!this.poller || this.closed || this.paused) return;
    if (this.running) this.again = true;
    else this.running = this.pump();
  }

  private async pump(): Promise<void> {
    try {
      do {
        this.again = false;
        while (!this.closed && !this.paused) {
          const now = Date.now();
          const [mail] = await this.store.claimMail(randomToken(16), now, now + LEASE_MS, 1);
          if (!mail) break;
          await this.attempt(mail);
        }
      } while (this.again && !this.closed && !this.paused);
    } catch (err) {
      // The store is down: the mails wait there, and the next look (every retryMs) tries again.
      this.log.warn({ reason: (err as { code?: unknown }).code ?? 'error' }, 'mail queue: store unavailable');
    } finally {
      this.running = undefined;
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private async attempt(mail: QueuedMail): Promise<void> {
    const lease = mail.lease!;
    let message: MailMessage;
    try {
      message = JSON.parse(unseal(mail.sealed, this.key, mail.id).toString('utf8')) as MailMessage;
    } catch {
      // Sealed under another server secret (an instance configured apart from the rest?):
      // left for one that can open it, until it is given up.
      return this.failed(mail, lease, 'unreadable', false);
    }
    const error = await this.transport.send(this.options.from, message).then(
      () => undefined,
      (err: unknown) => err ?? new Error('send failed'),
    );
    if (error === undefined) {
      this.sentCounts.sent += 1;
      await this.store.deleteMail(mail.id, lease);
      return;
    }
    // The code only: never the message, which may hold the URL with its password.
    await this.failed(mail, lease, (error as { code?: unknown }).code ?? 'error', true);
  }

  private async failed(mail: QueuedMail, lease: string, reason: unknown, pause: boolean): Promise<void> {
    this.sentCounts.failedAttempts += 1;
    const attempts = mail.attempts + 1;
    const now = Date.now();
    if (now - mail.queuedAt >= (this.options.giveUpMs ?? 24 * 60 * 60_000)) {
      await this.store.deleteMail(mail.id, lease);
      this.sentCounts.dropped += 1;
      this.log.warn({ reason, attempts }, 'mail given up after repeated failures');
      return;
    }
    const wait = Math.min(MAX_BACKOFF_MS, this.options.retryMs * 2 ** (attempts - 1));
    await this.store.retryMail(mail.id, lease, now + wait);
    this.log.warn({ reason, attempts, retryInMs: wait }, 'mail not sent; will retry');
    if (!pause) return;
    this.paused = setTimeout(() => {
      this.paused = undefined;
      this.kick();
    }, wait);
    this.paused.unref();
  }

  /** Stops sending; a send under way is finished (and its mail deleted or rescheduled) first. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.poller);
    if (this.paused) clearTimeout(this.paused);
    await this.running;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
    this.transport.close();
  }
}
