import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';

/** The web pages the account server serves (sign in, register, account). */
export function registerPages(_app: FastifyInstance, _deps: { config: Config }): void {}
