export { SecretsService, envNamePattern, serviceNamePattern } from './service.ts';
export type {
  Integration,
  IntegrationInput,
  IntegrationTest,
  MasterKeyStatus,
  SecretsServiceDeps,
  TestOutcome,
} from './service.ts';
export { KeyRing, generateMasterKey, masterKeyFile, parseMasterKeyList } from './keyring.ts';
export { SealedValueError, openValue, sealValue } from './envelope.ts';
export type { MasterKey, SealedValueProblem } from './envelope.ts';
export type {
  RotationOptions,
  RotationProgress,
  RotationReport,
  SealedColumn,
} from './rotation.ts';
