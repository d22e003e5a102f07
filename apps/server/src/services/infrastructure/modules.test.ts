/**
 * The Terraform modules, checked offline: the cloud ones cannot be `init`-ed here (no provider
 * registry), so CI checks that every target parses and is formatted (`terraform fmt -check`),
 * declares the variables the service passes and outputs `machines`, and tags what it creates
 * with the deployment id.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TERRAFORM_DIR } from './index.ts';

const targets = ['local', 'aws', 'gcp', 'azure'];
const serviceVariables = ['deployment_id', 'machine_count', 'size', 'region', 'image', 'bootstrap'];

function moduleText(target: string): string {
  const dir = path.join(TERRAFORM_DIR, 'targets', target);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.tf'))
    .map((f) => readFileSync(path.join(dir, f), 'utf8'))
    .join('\n');
}

function terraform(args: string[]): string {
  const config = path.join(mkdtempSync(path.join(tmpdir(), 'vf-tf-')), 'cli.tfrc');
  writeFileSync(config, '');
  return execFileSync('terraform', args, {
    cwd: TERRAFORM_DIR,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', TF_CLI_CONFIG_FILE: config, CHECKPOINT_DISABLE: '1' },
  });
}

describe('infra/terraform modules (static)', () => {
  it('parse and are formatted: terraform fmt -check -recursive', () => {
    expect(() => terraform(['fmt', '-check', '-recursive', '-no-color', '.'])).not.toThrow();
  });

  it('fmt -check fails on a module that does not parse (the check above has teeth)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vf-tf-bad-'));
    writeFileSync(path.join(dir, 'main.tf'), 'variable "x" {\n  type = \n');
    expect(() =>
      execFileSync('terraform', ['fmt', '-check', '-no-color', dir], { stdio: 'pipe' }),
    ).toThrow();
  });

  it.each(targets)('%s declares the service variables and the machines output', (target) => {
    const text = moduleText(target);
    const variables = [...text.matchAll(/^variable\s+"([a-z_]+)"\s*\{/gm)].map((m) => m[1]);
    expect(variables).toEqual(expect.arrayContaining(serviceVariables));
    const outputs = [...text.matchAll(/^output\s+"([a-z_]+)"\s*\{/gm)].map((m) => m[1]);
    expect(outputs).toContain('machines');
    // Every machine's output carries what the server stores.
    for (const field of ['name', 'id', 'private_ip', 'public_ip']) {
      expect(text).toMatch(new RegExp(`^\\s+${field}\\s+=`, 'm'));
    }
  });

  it.each(['aws', 'gcp', 'azure'])('%s tags its resources with the deployment id', (target) => {
    const text = moduleText(target);
    expect(text).toContain('"vaporform-deployment" = var.deployment_id');
    expect(text).toContain('bootstrap/agent.sh.tftpl');
  });
});
