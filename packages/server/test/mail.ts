// Mail for the tests: a real SMTP server on this machine that keeps what it receives, the
// development outbox folder read back, and the links and codes in a mail.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  to: string;
  from: string;
  subject: string;
  text: string;
  html: string;
}

async function parse(raw: Buffer | string): Promise<ReceivedMail> {
  const m = await simpleParser(raw);
  const to = Array.isArray(m.to) ? m.to[0] : m.to;
  return {
    to: to?.value[0]?.address ?? '',
    from: m.from?.value[0]?.address ?? '',
    subject: m.subject ?? '',
    text: m.text ?? '',
    html: typeof m.html === 'string' ? m.html : '',
  };
}

export interface TestSmtp {
  port: number;
  url: string;
  mails: ReceivedMail[];
  /** The first mail to `to` (after `skip` of them) whose subject matches, waiting for it to arrive. */
  waitFor(to: string, subject: RegExp, skip?: number): Promise<ReceivedMail>;
  /** Mails to `to` so far. */
  to(to: string): ReceivedMail[];
  listen(): Promise<void>;
  stop(): Promise<void>;
}

/** An SMTP server with a login (user `tessera`, password `mail-pass`), on `port` (0: any free one). */
export async function startSmtp(port = 0, options: { listen?: boolean } = {}): Promise<TestSmtp> {
  const mails: ReceivedMail[] = [];
  let server: SMTPServer | undefined;
  const make = () =>
    new SMTPServer({
      authOptional: false,
      allowInsecureAuth: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onAuth(auth, _session, cb) {
        if (auth.username === 'tessera' && auth.password === 'mail-pass') cb(null, { user: 'tessera' });
        else cb(new Error('bad login'));
      },
      onData(stream, _session, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          parse(Buffer.concat(chunks)).then(
            (m) => {
              mails.push(m);
              cb();
            },
            (err: Error) => cb(err),
          );
        });
      },
    });
  const smtp: TestSmtp = {
    port,
    url: '',
    mails,
    to: (to) => mails.filter((m) => m.to === to),
    async waitFor(to, subject, skip = 0) {
      for (let i = 0; i < 1000; i++) {
        const found = mails.filter((m) => m.to === to && subject.test(m.subject))[skip];
        if (found) return found;
        await delay(20);
      }
      throw new Error(`no mail to ${to} matching ${subject}`);
    },
    listen: () =>
      new Promise((resolve, reject) => {
        server = make();
        server.once('error', reject);
        server.listen(smtp.port, '127.0.0.1', () => {
          smtp.port = (server!.server.address() as { port: number }).port;
          smtp.url = `smtp://tessera:mail-pass@127.0.0.1:${smtp.port}`;
          resolve();
        });
      }),
    stop: () =>
      new Promise((resolve) => {
        if (!server) return resolve();
        const s = server;
        server = undefined;
        s.close(() => resolve());
      }),
  };
  if (options.listen !== false) await smtp.listen();
  else smtp.url = `smtp://tessera:mail-pass@127.0.0.1:${port}`;
  return smtp;
}

/** The mails the development outbox holds, oldest first. */
export async function outbox(dataDir: string): Promise<ReceivedMail[]> {
  const dir = path.join(dataDir, 'outbox');
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return [];
  }
  return Promise.all(names.map((n) => parse(readFileSync(path.join(dir, n)))));
}

/** The token of the link to `page` in a mail's plain text, checked against its HTML. */
export function linkToken(mail: ReceivedMail, page: string): string {
  const m = new RegExp(`(https?://[^\\s/]+/${page}\\?token=([A-Za-z0-9_%-]+))`).exec(mail.text);
  if (!m) throw new Error(`no ${page} link in "${mail.subject}"`);
  if (!mail.html.includes(m[1]!)) throw new Error('the HTML part has another link');
  return decodeURIComponent(m[2]!);
}

/** The full link to `page` in a mail. */
export function linkUrl(mail: ReceivedMail, page: string): string {
  const m = new RegExp(`(https?://[^\\s/]+/${page}\\?token=[A-Za-z0-9_%-]+)`).exec(mail.text);
  if (!m) throw new Error(`no ${page} link in "${mail.subject}"`);
  return m[1]!;
}

/** The six-digit code of a verification mail. */
export function codeIn(mail: ReceivedMail): string {
  const m = /code: (\d{6})/.exec(mail.text);
  if (!m) throw new Error(`no code in "${mail.subject}"`);
  return m[1]!;
}
