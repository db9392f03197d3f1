/**
 * The JSON Schema (draft 2020-12) of the `region`, `federation` and `residency` sections of
 * gatehouse.yaml, written into docs/workspace.schema.json by scripts/workspace-schema.ts so
 * editors can check a federated workspace. It states what the parsers (peers.ts,
 * residency-config.ts) accept, field by field; the cross-checks that need the whole
 * workspace (a dataset stored outside its regions, a remote region without a pinned peer)
 * stay with the loader, which reports them with their lines.
 */
import { NODE_ID, REGION } from './keys.ts';

const id = (what: string) => ({ type: 'string', pattern: NODE_ID.source, description: what });
const region = (what: string) => ({ type: 'string', pattern: REGION.source, description: what });

export function residencyJsonSchema(): Record<string, unknown> {
  return {
    region: {
      description: 'This node in a federation (docs/residency.md): its id and region must match its identity ("gatehouse node init"). Required with federation or residency.',
      type: 'object', additionalProperties: false, required: ['node', 'region', 'jurisdiction'],
      properties: {
        node: id('this node\'s id'),
        region: region('this node\'s region, such as eu-west'),
        jurisdiction: { type: 'string', minLength: 1, description: 'such as EU or US' },
      },
    },
    federation: {
      description: 'The node-to-node listener (mutual TLS) and the pinned peers.',
      type: ['object', 'null'], additionalProperties: false,
      properties: {
        listen: {
          type: 'object', additionalProperties: false, required: ['port'],
          properties: { host: { type: 'string' }, port: { type: 'integer', minimum: 0, maximum: 65535 } },
        },
        clockSkewSeconds: { type: 'integer', minimum: 1, maximum: 600, description: 'signed envelopes older or newer than this are refused (default 30)' },
        peers: {
          type: 'array',
          items: {
            type: 'object', additionalProperties: false, required: ['node', 'region', 'jurisdiction', 'url', 'publicKey'],
            properties: {
              node: id('the peer\'s node id'),
              region: region('the region its key is pinned to'),
              jurisdiction: { type: 'string', minLength: 1 },
              url: { type: 'string', pattern: '^https://[^/]+:[0-9]+/?$', description: 'https://host:port of its node listener' },
              publicKey: { type: 'string', pattern: '^ed25519:[A-Za-z0-9_-]{43}$', description: 'as "gatehouse node init" prints it' },
            },
          },
        },
      },
    },
    residency: {
      description: 'Where each dataset held here may be stored and processed, and which regions hold datasets reached through peers.',
      type: 'object', additionalProperties: false,
      properties: {
        datasets: {
          type: 'object', propertyNames: { pattern: '^[a-z_][a-z0-9_]*$' },
          additionalProperties: {
            type: 'object', additionalProperties: false, required: ['storedIn'],
            properties: {
              storedIn: region('where the dataset is stored: this node\'s region'),
              processIn: { type: 'array', minItems: 1, items: region('a region it may be processed in'), description: 'default: [storedIn]' },
            },
          },
        },
        remote: {
          type: 'object', propertyNames: { pattern: '^[a-z_][a-z0-9_]*$' },
          additionalProperties: {
            type: 'object', additionalProperties: false, required: ['regions'],
            properties: { regions: { type: 'array', minItems: 1, items: region('a region holding (a partition of) the dataset') } },
          },
        },
      },
    },
  };
}

/** The schema text with the three sections replaced by this module's; everything else kept. */
export function schemaWithResidency(schemaText: string): string {
  const schema = JSON.parse(schemaText) as { properties?: Record<string, unknown> };
  if (!schema.properties) throw new Error('the workspace schema has no properties to extend');
  Object.assign(schema.properties, residencyJsonSchema());
  // Non-ASCII as JSON \u escapes, as the file has always been written (src/query/masks/published.ts).
  return `${JSON.stringify(schema, null, 2).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`;
}
