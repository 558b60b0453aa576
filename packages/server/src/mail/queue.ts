import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type { Config } from '../config.js';
import { privateDir } from '../util/private-files.js';

/** One mail, already rendered; `links` are what the development outbox prints in the log. */
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
  const transport = nodemailer.createTransport(url, {});
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
 * The development default: every mail written to `dir` as an .eml file (owner-only), and its
 * links printed in the log, so a server with no mail server is still usable end to end.
 */
export function outboxTransport(dir: string, log: () => MailLog): MailTransport {
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
      log().info({ to: m.to, subject: m.subject, links: m.links, file }, 'mail written to the outbox');
    },
    close: () => transport.close(),
  };
}

/** What /readyz and /metrics say of the queue. */
export interface MailQueueState {
  transport: MailTransport['kind'];
  /** Mails waiting to be sent (being retried, or just queued). */
  queued: number;
  /** The last attempt failed; the queue is waiting to retry. */
  retrying: boolean;
  sent: number;
  failedAttempts: number;
  /** Mails given up after `giveUpMs` of failures. */
  dropped: number;
}

interface Pending {
  message: MailMessage;
  queuedAt: number;
  attempts: number;
}

const MAX_BACKOFF_MS = 60 * 60_000;

/**
 * Mail goes out through this queue, never in the request: a request that sends a mail only
 * enqueues it, so a mail server that is slow or down neither delays nor fails the request. Mails
 * are sent in order; a failure keeps the mail and retries after a wait that doubles (from
 * `retryMs`, at most an hour) until it goes out or has failed for `giveUpMs` (its links are dead
 * by then). The queue lives in the process: a restart forgets mails not yet sent.
 */
export class MailQueue {
  log: MailLog = NO_LOG;
  private readonly pending: Pending[] = [];
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private retrying = false;
  private counts = { sent: 0, failedAttempts: 0, dropped: 0 };
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly transport: MailTransport,
    private readonly options: { from: string; retryMs: number; giveUpMs?: number },
  ) {}

  /** The queue the configuration names: SMTP when TESSERA_SMTP_URL is set, else the outbox folder. */
  static fromConfig(
    config: Pick<Config, 'smtpUrl' | 'mailFrom' | 'mailRetrySeconds' | 'dataDir'>,
  ): MailQueue {
    let queue: MailQueue | undefined;
    const transport = config.smtpUrl
      ? smtpTransport(config.smtpUrl)
      : outboxTransport(path.join(config.dataDir, 'outbox'), () => queue?.log ?? NO_LOG);
    queue = new MailQueue(transport, { from: config.mailFrom, retryMs: config.mailRetrySeconds * 1000 });
    return queue;
  }

  enqueue(message: MailMessage): void {
    if (this.closed) return;
    this.pending.push({ message, queuedAt: Date.now(), attempts: 0 });
    if (!this.retrying) void this.pump();
  }

  get state(): MailQueueState {
    return {
      transport: this.transport.kind,
      queued: this.pending.length,
      retrying: this.retrying,
      ...this.counts,
    };
  }

  /** Resolves once nothing is queued (tests, shutdown). */
  idle(): Promise<void> {
    if (this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async pump(): Promise<void> {
    if (this.running || this.closed) return;
    this.running = true;
    try {
      while (this.pending.length > 0 && !this.closed) {
        const head = this.pending[0]!;
        try {
          await this.transport.send(this.options.from, head.message);
          this.pending.shift();
          this.counts.sent += 1;
          this.retrying = false;
        } catch (err) {
          head.attempts += 1;
          this.counts.failedAttempts += 1;
          // The code and the message's first line only: never the URL with its password.
          const reason = (err as { code?: unknown }).code ?? 'error';
          if (Date.now() - head.queuedAt >= (this.options.giveUpMs ?? 24 * 60 * 60_000)) {
            this.pending.shift();
            this.counts.dropped += 1;
            this.log.warn({ reason, attempts: head.attempts }, 'mail given up after repeated failures');
            continue;
          }
          const wait = Math.min(MAX_BACKOFF_MS, this.options.retryMs * 2 ** (head.attempts - 1));
          this.retrying = true;
          this.log.warn({ reason, attempts: head.attempts, retryInMs: wait }, 'mail not sent; will retry');
          this.timer = setTimeout(() => {
            this.timer = undefined;
            void this.pump();
          }, wait);
          this.timer.unref();
          return;
        }
      }
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    } finally {
      this.running = false;
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const resolve of this.idleWaiters.splice(0)) resolve();
    this.transport.close();
  }
}
