import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';

export interface CookieNames {
  session: string;
  refresh: string;
}

/** `__Host-` names (Secure, Path=/, no Domain) unless plain-HTTP development is configured. */
export function cookieNames(config: Pick<Config, 'secureCookies'>): CookieNames {
  const prefix = config.secureCookies ? '__Host-' : '';
  return { session: `${prefix}tessera_session`, refresh: `${prefix}tessera_refresh` };
}

export function setAuthCookie(
  reply: FastifyReply,
  config: Config,
  name: string,
  value: string,
  maxAgeSeconds: number,
): void {
  reply.setCookie(name, value, {
    httpOnly: true,
    secure: config.secureCookies,
    sameSite: config.sameSite,
    path: '/',
    maxAge: maxAgeSeconds,
  });
}

export function clearAuthCookies(reply: FastifyReply, config: Config, names: CookieNames): void {
  for (const name of [names.session, names.refresh]) {
    reply.clearCookie(name, {
      httpOnly: true,
      secure: config.secureCookies,
      sameSite: config.sameSite,
      path: '/',
    });
  }
}

export function readCookie(request: FastifyRequest, name: string): string | undefined {
  const value = request.cookies[name];
  return typeof value === 'string' && value.length > 0 && value.length <= 256 ? value : undefined;
}
