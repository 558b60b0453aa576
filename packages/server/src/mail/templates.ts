import type { MailMessage } from './queue.js';

/** What every mail is written with: the product's name and the server's public URL. */
export interface MailContext {
  productName: string;
  issuer: string;
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

interface Body {
  subject: string;
  /** Paragraphs, plain text. */
  paragraphs: string[];
  /** The one action of the mail, if any. */
  action?: { label: string; url: string };
  /** A short code to type instead of following the link. */
  code?: string;
  footer?: string;
}

/** One mail in plain text and in HTML, from the same words. */
function render(ctx: MailContext, to: string, body: Body): MailMessage {
  const footer =
    body.footer ?? `If you did not expect this mail, you can ignore it. — ${ctx.productName}, ${ctx.issuer}`;
  const text = [
    ...body.paragraphs,
    ...(body.action ? [`${body.action.label}:\n${body.action.url}`] : []),
    ...(body.code ? [`Or enter this code: ${body.code}`] : []),
    `--\n${footer}`,
  ].join('\n\n');
  const html = [
    '<!doctype html><html><body style="font-family:sans-serif;line-height:1.5;max-width:36em">',
    ...body.paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`),
    ...(body.action
      ? [`<p><a href="${escapeHtml(body.action.url)}">${escapeHtml(body.action.label)}</a></p>`]
      : []),
    ...(body.code ? [`<p>Or enter this code: <strong>${escapeHtml(body.code)}</strong></p>`] : []),
    `<hr><p style="color:#666;font-size:small">${escapeHtml(footer)}</p>`,
    '</body></html>',
  ].join('\n');
  return {
    to,
    subject: `${body.subject} — ${ctx.productName}`,
    text: `${text}\n`,
    html,
    links: body.action ? [body.action.url] : [],
  };
}

function link(ctx: MailContext, page: string, token: string): string {
  return `${ctx.issuer}/${page}?token=${encodeURIComponent(token)}`;
}

/** Every mail the server sends. */
export const mails = {
  verify: (ctx: MailContext, to: string, token: string, code: string, minutes: number) =>
    render(ctx, to, {
      subject: 'Confirm your email address',
      paragraphs: [
        `Confirm that ${to} is your address for your ${ctx.productName} account.`,
        `The link and the code work once, for ${minutes} minutes.`,
      ],
      action: { label: 'Confirm your address', url: link(ctx, 'verify-email', token) },
      code,
    }),
  emailInUse: (ctx: MailContext, to: string) =>
    render(ctx, to, {
      subject: 'Your address was given at sign-up',
      paragraphs: [
        `Someone signed up for ${ctx.productName} with ${to}, which already belongs to an account.`,
        'If that was you, sign in instead, or reset your password if you forgot it.',
      ],
      action: { label: 'Reset your password', url: `${ctx.issuer}/forgot-password` },
    }),
  reset: (ctx: MailContext, to: string, token: string, minutes: number) =>
    render(ctx, to, {
      subject: 'Reset your password',
      paragraphs: [
        `Someone asked to reset the password of your ${ctx.productName} account.`,
        `The link works once, for ${minutes} minutes. Using it signs you out everywhere.`,
      ],
      action: { label: 'Choose a new password', url: link(ctx, 'reset-password', token) },
    }),
  confirmChange: (ctx: MailContext, to: string, token: string, minutes: number) =>
    render(ctx, to, {
      subject: 'Confirm your new email address',
      paragraphs: [
        `Confirm that ${to} is the new address of your ${ctx.productName} account.`,
        `The link works once, for ${minutes} minutes.`,
      ],
      action: { label: 'Confirm the new address', url: link(ctx, 'confirm-email', token) },
    }),
  changeNotice: (ctx: MailContext, to: string, newAddress: string, undoToken: string, minutes: number) =>
    render(ctx, to, {
      subject: 'Your email address is being changed',
      paragraphs: [
        `Someone signed in to your ${ctx.productName} account asked to change its address to ${newAddress}.`,
        `If that was not you, undo it within ${minutes} minutes: the link restores this address and signs out every session.`,
      ],
      action: { label: 'Undo the change', url: link(ctx, 'confirm-email', undoToken) },
      footer: `— ${ctx.productName}, ${ctx.issuer}`,
    }),
  passwordChanged: (ctx: MailContext, to: string) =>
    render(ctx, to, {
      subject: 'Your password was changed',
      paragraphs: [
        `The password of your ${ctx.productName} account was just changed.`,
        'If that was not you, reset your password now.',
      ],
      action: { label: 'Reset your password', url: `${ctx.issuer}/forgot-password` },
      footer: `— ${ctx.productName}, ${ctx.issuer}`,
    }),
  providerChange: (ctx: MailContext, to: string, provider: string, change: 'linked' | 'unlinked') => {
    const linked = change === 'linked';
    return render(ctx, to, {
      subject: linked
        ? 'A sign-in provider was linked to your account'
        : 'A sign-in provider was unlinked from your account',
      paragraphs: [
        linked
          ? `${provider} was linked to your ${ctx.productName} account: signing in there now signs in to this account.`
          : `${provider} was unlinked from your ${ctx.productName} account: signing in there no longer signs in to this account.`,
        `If that was not you, reset your password (that signs out every session), then ${linked ? 'unlink it' : 'link it again'} on your account page.`,
      ],
      action: { label: 'Reset your password', url: `${ctx.issuer}/forgot-password` },
      footer: `— ${ctx.productName}, ${ctx.issuer}`,
    });
  },
  newDevice: (ctx: MailContext, to: string, device: string, ip: string, at: Date) =>
    render(ctx, to, {
      subject: 'A sign-in from a new device',
      paragraphs: [
        `Your ${ctx.productName} account was signed in to from a device it had not seen before.`,
        `Device: ${device}\nAddress: ${ip}\nTime: ${at.toISOString()}`,
        'If that was not you, reset your password: that signs out every session.',
      ],
      action: { label: 'Reset your password', url: `${ctx.issuer}/forgot-password` },
      footer: `— ${ctx.productName}, ${ctx.issuer}`,
    }),
};
