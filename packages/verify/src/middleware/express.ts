import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { AccessTokenClaims } from '../claims.js';
import type { Verifier } from '../verifier.js';
import { type AuthFailure, type AuthOptions, authenticateRequest, checkRoles, checkScopes } from './core.js';

declare global {
  namespace Express {
    interface Request {
      /** Claims of the verified access token, set by `expressAuth`. */
      auth?: AccessTokenClaims;
    }
  }
}

function send(res: Response, f: AuthFailure): void {
  res.status(f.status).set(f.headers).json(f.body);
}

/**
 * Express middleware: verifies the Bearer token (or, with `options.dpop`, a DPoP-bound token and
 * its proof) and sets `req.auth`, or answers 401/503. The expected DPoP `htu` is the checker's
 * `publicUrl` plus the request path.
 */
export function expressAuth(verifier: Verifier, options: AuthOptions = {}): RequestHandler {
  return (req: Request, res: Response, next: NextFunction): void => {
    const request = {
      method: req.method,
      url: req.originalUrl,
      authorization: req.headers.authorization,
      dpop: req.headers.dpop,
    };
    authenticateRequest(verifier, request, options).then((out) => {
      if (!out.ok) return send(res, out.failure);
      req.auth = out.claims;
      next();
    }, next);
  };
}

/** Answers 403 `insufficient_scope` unless `req.auth` carries every scope. */
export function expressRequireScopes(scopes: readonly string[], options: AuthOptions = {}): RequestHandler {
  return (req, res, next) => {
    const f = checkScopes(req.auth, scopes, options);
    if (f) send(res, f);
    else next();
  };
}

/** Answers 403 `insufficient_scope` unless `req.auth` has one of the roles. */
export function expressRequireRoles(anyOf: readonly string[], options: AuthOptions = {}): RequestHandler {
  return (req, res, next) => {
    const f = checkRoles(req.auth, anyOf, options);
    if (f) send(res, f);
    else next();
  };
}
