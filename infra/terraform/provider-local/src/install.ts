/**
 * Lays the provider out as a Terraform plugin directory (`terraform init -plugin-dir=DIR`, no
 * registry): DIR/<host>/<namespace>/<type>/<version>/<os>_<arch>/terraform-provider-<type>_v<version>,
 * an executable launcher that runs src/main.ts with this Node.js and tsx.
 * Run directly (`node --import tsx install.ts DIR`) it installs into DIR and prints it.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The provider's source address in Terraform configurations. */
export const PROVIDER_SOURCE = 'vaporform.local/infra/vaporform';
/** The version the plugin directory offers. */
export const PROVIDER_VERSION = '0.1.0';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.ts');

function platform(): string {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  return `${process.platform}_${arch}`;
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Writes the launcher under pluginDir; returns the launcher's path. */
export async function installProvider(pluginDir: string): Promise<string> {
  const dir = path.join(pluginDir, PROVIDER_SOURCE, PROVIDER_VERSION, platform());
  await mkdir(dir, { recursive: true });
  const launcher = path.join(dir, `terraform-provider-vaporform_v${PROVIDER_VERSION}`);
  // tsx's ESM loader (what `node --import tsx` loads), found without import.meta.resolve,
  // which some loaders (vitest's) do not offer.
  const tsxDir = path.dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const tsx = pathToFileURL(path.join(tsxDir, 'dist', 'loader.mjs')).href;
  await writeFile(
    launcher,
    `#!/bin/sh\nexec ${shellQuote(process.execPath)} --import ${shellQuote(tsx)} ${shellQuote(MAIN)} "$@"\n`,
  );
  await chmod(launcher, 0o755);
  return launcher;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = path.resolve(process.argv[2] ?? 'terraform-plugins');
  await installProvider(dir);
  process.stdout.write(`${dir}\n`);
}
