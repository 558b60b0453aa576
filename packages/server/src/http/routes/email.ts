import type { FastifyPluginAsyncJsonSchemaToTs } from '@fastify/type-provider-json-schema-to-ts';
import type { EmailAccounts, Redeemed } from '../../domain/email.js';
import { errors, JSON_BODY_ERRORS, noBody, object, PUBLIC, string } from '../../openapi/schemas.js';
import { signedIn } from '../guard.js';
import {
  type AuthRouteOptions,
  clientOf,
  EMAIL,
  EMPTY_BODY,
  GUARD_ERRORS,
  PASSWORD,
  SIGNED_IN,
  SIGNED_IN_WRITE,
  USER_FIELDS,
} from './shared.js';

const LINK_TOKEN = {
  type: 'string',
  minLength: 1,
  maxLength: 512,
  description: 'The `token` parameter of the mailed link.',
} as const;

const REDEEMED = object(
  {
    action: string(
      '`verified` (the address is confirmed), `changed` (the account moved to the new address) or ' +
        '`restored` (an email change was undone and every session ended).',
      { enum: ['verified', 'changed', 'restored'] },
    ),
    user: object({
      ...USER_FIELDS,
      email: string('The account’s address, now verified.'),
      email_verified: { type: 'boolean', description: 'Always true here.' },
    }),
  },
  { description: 'What the link or code did.' },
);

function redeemedView({ action, user }: Redeemed) {
  return {
    action,
    user: { id: user.id, username: user.username, email: user.email!, email_verified: user.emailVerified },
  };
}

/**
 * Email identity and recovery: verifying an address (by link or code), forgotten passwords and
 * changing the address. Mails go out through the queue after the answer.
 */
export const emailRoutes: FastifyPluginAsyncJsonSchemaToTs<{
  Options: AuthRouteOptions & { email: EmailAccounts };
}> = async (app, { email, metrics, guard }) => {
  app.get(
    '/auth/email',
    {
      preHandler: guard.requireAuth,
      schema: {
        summary: 'My address',
        description:
          'The account’s email address as stored now and whether it is verified. `GET /auth/me` ' +
          'answers from the session alone and has neither.',
        tags: ['email'],
        security: SIGNED_IN,
        response: {
          200: object(
            {
              email: {
                type: ['string', 'null'],
                description: 'The address; `null` when the account has none.',
              },
              email_verified: {
                type: 'boolean',
                description: 'Whether the address is verified; `false` when there is none.',
              },
            },
            { description: 'The address.' },
          ),
          ...errors(...GUARD_ERRORS),
        },
      },
    },
    async (request, reply) => {
      const { email: address, emailVerified } = await email.address(signedIn(request));
      reply.header('Cache-Control', 'no-store');
      return { email: address, email_verified: emailVerified };
    },
  );

  app.post(
    '/auth/email/verify/request',
    {
      preHandler: guard.requireAuth,
      schema: {
        body: EMPTY_BODY,
        summary: 'Send me a verification mail',
        description:
          'Mails a link (to `/verify-email?token=…`) and a six-digit code that verify the account’s ' +
          'address. A few per hour.',
        tags: ['email'],
        security: SIGNED_IN_WRITE,
        response: {
          202: noBody('The mail is on its way.'),
          ...errors(...JSON_BODY_ERRORS, ...GUARD_ERRORS, 'too_many_attempts'),
        },
      },
    },
    async (request, reply) => {
      await email.requestVerification(signedIn(request), clientOf(request));
      return reply.code(202).send();
    },
  );

  app.post(
    '/auth/email/verify',
    {
      schema: {
        body: {
          type: 'object',
          required: ['token'],
          additionalProperties: false,
          properties: { token: LINK_TOKEN },
        },
        summary: 'Redeem a mailed link',
        description:
          'The token of a verification link (`/verify-email`), of a new address’s confirmation or of ' +
          'an undo link (`/confirm-email`). Each works once and for a short time; a used, expired or ' +
          'unknown one answers `invalid_email_token`. An undo restores the former address and ends ' +
          'every session and OAuth grant of the account.',
        tags: ['email'],
        security: PUBLIC,
        response: {
          200: REDEEMED,
          ...errors(...JSON_BODY_ERRORS, 'invalid_email_token', 'email_taken', 'unavailable'),
        },
      },
    },
    async (request, reply) => {
      const redeemed = await email.redeem(request.body.token, clientOf(request));
      metrics.inc('tessera_emails_verified_total', { action: redeemed.action });
      reply.header('Cache-Control', 'no-store');
      return redeemedView(redeemed);
    },
  );

  app.post(
    '/auth/email/verify/code',
    {
      preHandler: guard.requireAuth,
      schema: {
        body: {
          type: 'object',
          required: ['code'],
          additionalProperties: false,
          properties: { code: { type: 'string', pattern: '^[0-9]{6}$', description: 'The six digits.' } },
        },
        summary: 'Verify my address with the code',
        description:
          'The six-digit code of the verification mail, for a device where the link is awkward. Only ' +
          'the account it was sent for can use it; a few tries per hour.',
        tags: ['email'],
        security: SIGNED_IN_WRITE,
        response: {
          200: REDEEMED,
          ...errors(
            ...JSON_BODY_ERRORS,
            ...GUARD_ERRORS,
            'invalid_email_token',
            'email_taken',
            'too_many_attempts',
          ),
        },
      },
    },
    async (request, reply) => {
      const redeemed = await email.redeemCode(signedIn(request), request.body.code, clientOf(request));
      metrics.inc('tessera_emails_verified_total', { action: redeemed.action });
      reply.header('Cache-Control', 'no-store');
      return redeemedView(redeemed);
    },
  );

  app.post(
    '/auth/password/forgot',
    {
      schema: {
        body: {
          type: 'object',
          required: ['email'],
          additionalProperties: false,
          properties: { email: EMAIL },
        },
        summary: 'I forgot my password',
        description:
          'Always `202`, whether or not an account has this verified address: the lookup and the mail ' +
          'happen after the answer. The account’s address gets a link to `/reset-password?token=…`. ' +
          'Limited per address and per client address.',
        tags: ['email'],
        security: PUBLIC,
        response: {
          202: noBody('If an account has this verified address, a mail is on its way.'),
          ...errors(...JSON_BODY_ERRORS, 'too_many_attempts', 'unavailable'),
        },
      },
    },
    async (request, reply) => {
      await email.forgot(request.body.email, clientOf(request));
      return reply.code(202).send();
    },
  );

  app.post(
    '/auth/password/reset',
    {
      schema: {
        body: {
          type: 'object',
          required: ['token', 'password'],
          additionalProperties: false,
          properties: {
            token: LINK_TOKEN,
            password: {
              ...PASSWORD,
              description: 'At least 8 characters, not a common password, not the username.',
            },
          },
        },
        summary: 'Reset my password',
        description:
          'Sets the password with the token of a reset link, then ends every session and OAuth grant of ' +
          'the account (their tokens enter the revocation feed). The link works once; a weak password ' +
          'does not spend it.',
        tags: ['email'],
        security: PUBLIC,
        response: {
          204: noBody('The password is set; sign in with it.'),
          ...errors(...JSON_BODY_ERRORS, 'invalid_email_token', 'weak_password', 'unavailable'),
        },
      },
    },
    async (request, reply) => {
      await email.reset(request.body.token, request.body.password, clientOf(request));
      metrics.inc('tessera_password_resets_total');
      return reply.code(204).send();
    },
  );

  app.post(
    '/auth/email/change',
    {
      preHandler: guard.requireAuth,
      schema: {
        body: {
          type: 'object',
          required: ['email'],
          additionalProperties: false,
          properties: { email: EMAIL },
        },
        summary: 'Change my address',
        description:
          'Mails the new address a link to `/confirm-email?token=…`; the account moves when it is ' +
          'followed. A verified former address is told, with a link that undoes the change.',
        tags: ['email'],
        security: SIGNED_IN_WRITE,
        response: {
          202: noBody('The confirmation is on its way to the new address.'),
          ...errors(...JSON_BODY_ERRORS, ...GUARD_ERRORS, 'too_many_attempts'),
        },
      },
    },
    async (request, reply) => {
      await email.requestChange(signedIn(request), request.body.email, clientOf(request));
      return reply.code(202).send();
    },
  );
};
