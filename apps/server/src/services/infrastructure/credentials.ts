import type { Integration } from '../secrets/index.ts';
import type { InfraProvider } from './store.ts';

/** What the infrastructure service needs of the secrets service. */
export interface CloudSecrets {
  getIntegration(projectId: string, service: string): Promise<Integration>;
  integrationCredentials(projectId: string, service: string): Promise<{ apiKey: string }>;
}

export type CloudProvider = Exclude<InfraProvider, 'local'>;

/** Whether a target can be provisioned with the project's credentials. */
export type CredentialsState = 'configured' | 'missing' | 'not_needed';

/**
 * How each cloud's integration (`aws`, `gcp`, `azure` in the project's integrations) becomes
 * the environment its Terraform provider reads: the sealed key is the secret, the integration's
 * configuration (not secret) names the account.
 */
const CLOUD_CREDENTIALS: Record<
  CloudProvider,
  { secret: string; required: Record<string, string>; optional: Record<string, string> }
> = {
  aws: {
    secret: 'AWS_SECRET_ACCESS_KEY',
    required: { accessKeyId: 'AWS_ACCESS_KEY_ID' },
    optional: { region: 'AWS_REGION' },
  },
  // The key is the service account's JSON key file, as the google provider reads it.
  gcp: { secret: 'GOOGLE_CREDENTIALS', required: {}, optional: { project: 'GOOGLE_PROJECT' } },
  azure: {
    secret: 'ARM_CLIENT_SECRET',
    required: {
      clientId: 'ARM_CLIENT_ID',
      tenantId: 'ARM_TENANT_ID',
      subscriptionId: 'ARM_SUBSCRIPTION_ID',
    },
    optional: {},
  },
};

/** What a cloud's integration must hold, said to the person provisioning. */
export function credentialsHint(provider: CloudProvider): string {
  const required = Object.keys(CLOUD_CREDENTIALS[provider].required);
  return (
    `the project's ${provider} integration (key: ${CLOUD_CREDENTIALS[provider].secret
      .toLowerCase()
      .replace(/_/g, ' ')}` +
    (required.length > 0 ? `; configuration: ${required.join(', ')}` : '') +
    ')'
  );
}

async function integration(
  secrets: CloudSecrets,
  projectId: string,
  provider: CloudProvider,
): Promise<Integration | undefined> {
  try {
    return await secrets.getIntegration(projectId, provider);
  } catch (error) {
    if ((error as { code?: string }).code === 'not_found') return undefined;
    throw error;
  }
}

function complete(found: Integration | undefined, provider: CloudProvider): boolean {
  if (!found?.active || !found.configured) return false;
  return Object.keys(CLOUD_CREDENTIALS[provider].required).every(
    (key) => typeof found.configuration[key] === 'string' && found.configuration[key] !== '',
  );
}

/** Whether the project's integration for `provider` holds what its provider needs. */
export async function credentialsState(
  secrets: CloudSecrets | undefined,
  projectId: string,
  provider: InfraProvider,
): Promise<CredentialsState> {
  if (provider === 'local') return 'not_needed';
  if (!secrets) return 'missing';
  return complete(await integration(secrets, projectId, provider), provider)
    ? 'configured'
    : 'missing';
}

/**
 * The provider's environment from the project's integration, or undefined when it is missing
 * or incomplete. The values go only into a Terraform child's environment: never log, store or
 * return them.
 */
export async function cloudEnvironment(
  secrets: CloudSecrets | undefined,
  projectId: string,
  provider: CloudProvider,
): Promise<Record<string, string> | undefined> {
  if (!secrets) return undefined;
  const found = await integration(secrets, projectId, provider);
  if (!complete(found, provider)) return undefined;
  const spec = CLOUD_CREDENTIALS[provider];
  const env: Record<string, string> = {
    [spec.secret]: (await secrets.integrationCredentials(projectId, provider)).apiKey,
  };
  for (const [key, name] of Object.entries({ ...spec.required, ...spec.optional })) {
    const value = found!.configuration[key];
    if (typeof value === 'string' && value !== '') env[name] = value;
  }
  return env;
}
