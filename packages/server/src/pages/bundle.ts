import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';

/** A built browser file, kept in memory with its validator. */
export interface Asset {
  body: string;
  etag: string;
}

const ENTRIES = {
  /** The pages' script, with the SDK bundled in. */
  'app.js': fileURLToPath(new URL('./browser/app.ts', import.meta.url)),
  /** The SDK alone, as an ES module, for other pages on this origin. */
  'sdk.js': fileURLToPath(new URL('../../../client/src/index.ts', import.meta.url)),
} as const;

export type ScriptName = keyof typeof ENTRIES;

const cache = new Map<ScriptName, Promise<Asset>>();

/**
 * Transpiles and bundles one browser entry with esbuild on first use and keeps it in memory.
 * esbuild comes with tsx, which already runs the server; a failed build is retried next time.
 */
export function script(name: ScriptName): Promise<Asset> {
  let built = cache.get(name);
  if (!built) {
    built = bundle(ENTRIES[name]);
    cache.set(name, built);
    built.catch(() => cache.delete(name));
  }
  return built;
}

export async function bundle(entry: string): Promise<Asset> {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    legalComments: 'none',
    logLevel: 'silent',
  });
  const body = result.outputFiles[0]?.text ?? '';
  return { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}
