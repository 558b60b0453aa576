import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** A file the pages load from /assets/, read once, with its validator. */
export interface Asset {
  body: string;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * Where each asset is. Nothing is bundled at run time: the SDK is the prebuilt browser file of the
 * installed @tessera/client, and the pages' script was built by `npm run build` into this package's
 * dist/assets. This module sits two folders below the package root both as src/pages/assets.ts and
 * as dist/pages/assets.js, so one relative path serves the sources and the built package.
 */
function locations(): Record<string, URL> {
  const sdk = new URL(import.meta.resolve('@tessera/client/browser'));
  const built = (name: string) => new URL(`../../dist/assets/${name}`, import.meta.url);
  const resource = (name: string) => new URL(`../../resources/pages/${name}`, import.meta.url);
  return {
    'app.js': built('app.js'),
    'app.js.map': built('app.js.map'),
    'sdk.js': sdk,
    'sdk.js.map': new URL(`${sdk.href}.map`),
    'app.css': resource('app.css'),
    'logo.svg': resource('logo.svg'),
  };
}

let loaded: Map<string, Asset> | undefined;

/** Every asset by its name under /assets/; a missing built file stops the server at start. */
export function pageAssets(): Map<string, Asset> {
  if (loaded) return loaded;
  const assets = new Map<string, Asset>();
  for (const [name, url] of Object.entries(locations())) {
    let body: string;
    try {
      body = readFileSync(url, 'utf8');
    } catch (err) {
      throw new Error(`${fileURLToPath(url)} cannot be read (${(err as Error).message}); run npm run build`);
    }
    const type = TYPES[name.slice(name.lastIndexOf('.'))]!;
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    assets.set(name, { body, type, etag });
  }
  loaded = assets;
  return assets;
}
