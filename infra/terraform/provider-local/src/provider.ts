import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { MACHINE_ATTRIBUTES, Machines } from './machine.ts';
import { decode, encode, type CtyValue } from './msgpack.ts';

/** The resource type this provider serves. */
export const MACHINE_TYPE = 'vaporform_machine';

interface DynamicValue {
  msgpack?: Buffer | null;
  json?: Buffer | null;
}

interface Diagnostic {
  severity: 'ERROR' | 'WARNING';
  summary: string;
  detail: string;
}

type State = { [key: string]: CtyValue };

/** Reads a DynamicValue that Terraform sent (msgpack, or JSON from old states). */
function fromDynamic(value: DynamicValue | null | undefined): State | null {
  if (!value) return null;
  let decoded: CtyValue = null;
  if (value.msgpack && value.msgpack.length > 0) decoded = decode(value.msgpack);
  else if (value.json && value.json.length > 0) decoded = JSON.parse(value.json.toString('utf8'));
  if (decoded === null) return null;
  if (typeof decoded !== 'object' || Array.isArray(decoded)) throw new Error('expected an object');
  return decoded as State;
}

function toDynamic(value: State | null): DynamicValue {
  return { msgpack: encode(value) };
}

function error(summary: string, cause?: unknown): Diagnostic {
  return {
    severity: 'ERROR',
    summary,
    detail: cause === undefined ? '' : cause instanceof Error ? cause.message : String(cause),
  };
}

function typeBytes(type: string): Buffer {
  return Buffer.from(JSON.stringify(type));
}

function machineSchema(): object {
  return {
    version: 0,
    block: {
      version: 0,
      description: 'A hardened Docker container on a network of its own per deployment.',
      attributes: MACHINE_ATTRIBUTES.map((a) => ({
        name: a.name,
        type: typeBytes(a.type),
        description: a.description,
        required: a.role === 'required',
        optional: a.role === 'optional' || a.role === 'optional+computed',
        computed: a.role === 'optional+computed' || a.role === 'computed',
        sensitive: a.sensitive === true,
      })),
      block_types: [],
    },
  };
}

type Handler = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void;

/** Wraps an async handler: a throw becomes an error diagnostic, never a broken RPC. */
function unary<Request>(fn: (request: Request) => Promise<object> | object): Handler {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request as Request))
      .then(
        (response) => callback(null, response),
        (cause: unknown) => callback(null, { diagnostics: [error('provider error', cause)] }),
      );
  };
}

/** The tfplugin6.Provider service's handlers, for @grpc/grpc-js. */
export function providerHandlers(machines: Machines = new Machines()): Record<string, Handler> {
  const capabilities = { plan_destroy: false, get_provider_schema_optional: true };
  const unsupported = (what: string) =>
    unary(() => ({ diagnostics: [error(`${what} is not supported by this provider`)] }));
  const checkType = (typeName: string): void => {
    if (typeName !== MACHINE_TYPE) throw new Error(`unknown resource type ${typeName}`);
  };
  return {
    GetMetadata: unary(() => ({
      server_capabilities: capabilities,
      diagnostics: [],
      data_sources: [],
      resources: [{ type_name: MACHINE_TYPE }],
      functions: [],
      ephemeral_resources: [],
    })),
    GetProviderSchema: unary(() => ({
      provider: { version: 0, block: { version: 0, attributes: [], block_types: [] } },
      resource_schemas: { [MACHINE_TYPE]: machineSchema() },
      data_source_schemas: {},
      functions: {},
      ephemeral_resource_schemas: {},
      diagnostics: [],
      server_capabilities: capabilities,
    })),
    ValidateProviderConfig: unary(() => ({ diagnostics: [] })),
    ValidateResourceConfig: unary((request: { type_name: string }) => {
      checkType(request.type_name);
      return { diagnostics: [] };
    }),
    ValidateDataResourceConfig: unsupported('data sources'),
    UpgradeResourceState: unary((request: { raw_state?: { json?: Buffer } }) => {
      // Schema version 0 is the only one: the stored JSON state is already current.
      return { upgraded_state: { json: request.raw_state?.json ?? Buffer.from('null') } };
    }),
    ConfigureProvider: unary(() => ({ diagnostics: [] })),
    ReadResource: unary(
      async (request: { type_name: string; current_state: DynamicValue; private: Buffer }) => {
        checkType(request.type_name);
        const current = fromDynamic(request.current_state);
        const state = current === null ? null : await machines.read(current);
        return { new_state: toDynamic(state), diagnostics: [], private: request.private };
      },
    ),
    PlanResourceChange: unary(
      (request: {
        type_name: string;
        prior_state: DynamicValue;
        proposed_new_state: DynamicValue;
        prior_private: Buffer;
      }) => {
        checkType(request.type_name);
        const plan = machines.plan(
          fromDynamic(request.prior_state),
          fromDynamic(request.proposed_new_state),
        );
        return {
          planned_state: toDynamic(plan.planned),
          requires_replace: plan.requiresReplace.map((name) => ({
            steps: [{ attribute_name: name }],
          })),
          planned_private: request.prior_private,
          diagnostics: [],
        };
      },
    ),
    ApplyResourceChange: unary(
      async (request: {
        type_name: string;
        prior_state: DynamicValue;
        planned_state: DynamicValue;
        planned_private: Buffer;
      }) => {
        checkType(request.type_name);
        const state = await machines.apply(
          fromDynamic(request.prior_state),
          fromDynamic(request.planned_state),
        );
        return { new_state: toDynamic(state), private: request.planned_private, diagnostics: [] };
      },
    ),
    ImportResourceState: unsupported('import'),
    MoveResourceState: unsupported('moving state'),
    ReadDataSource: unsupported('data sources'),
    ValidateEphemeralResourceConfig: unsupported('ephemeral resources'),
    OpenEphemeralResource: unsupported('ephemeral resources'),
    RenewEphemeralResource: unsupported('ephemeral resources'),
    CloseEphemeralResource: unsupported('ephemeral resources'),
    GetFunctions: unary(() => ({ functions: {}, diagnostics: [] })),
    CallFunction: unary(() => ({ error: { text: 'this provider has no functions' } })),
    StopProvider: unary(() => ({ Error: '' })),
  };
}
