// The browser files, built ahead of time by `npm run build` (after tsc): the SDK that
// @tessera/client ships as `@tessera/client/browser`, and the account pages' script that
// @tessera/server ships, which loads that SDK from `./sdk.js` beside it. Nothing is bundled
// while the server runs.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BuildOptions, build, type Plugin } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');

/** How every browser script of this repository is bundled: one ES module for current browsers. */
export function browserOptions(entry: string): BuildOptions {
  return {
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    legalComments: 'none',
    logLevel: 'warning',
  };
}

/** The pages' script imports the SDK as a package; in the browser it is the file served next to it. */
const sdkBeside: Plugin = {
  name: 'sdk-beside',
  setup(b) {
    b.onResolve({ filter: /^@tessera\/client$/ }, () => ({ path: './sdk.js', external: true }));
  },
};

/** Writes the minified files with their source maps into the packages' dist folders. */
export async function buildBrowserFiles(): Promise<void> {
  const shipped = { minify: true, sourcemap: true } satisfies BuildOptions;
  await build({
    ...browserOptions(path.join(root, 'packages/client/src/index.ts')),
    ...shipped,
    outfile: path.join(root, 'packages/client/dist/browser/sdk.js'),
  });
  await build({
    ...browserOptions(path.join(root, 'packages/server/src/pages/browser/app.ts')),
    ...shipped,
    plugins: [sdkBeside],
    outfile: path.join(root, 'packages/server/dist/assets/app.js'),
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await buildBrowserFiles();
}
