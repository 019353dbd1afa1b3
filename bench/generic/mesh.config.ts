// GraphQL Mesh (v1) composition of the OMS order-item REST API, served by Hive Gateway: the
// generic gateway bench/floor.py --generic measures beside ours. No resolver is written here:
// each root field is one REST operation, typed by a JSON Schema of the OMS's answers.
//
// Everything specific comes from the environment, set by bench/generic_gw.py from the gateway's
// own constants (one source of truth): the REST paths and the JSON Schema at compose time; the
// OMS's address and token at run time, when Hive Gateway interpolates `{env.*}` per request, so
// neither is written into the composed supergraph.
import { defineConfig } from '@graphql-mesh/compose-cli';
import { loadJSONSchemaSubgraph } from '@omnigraph/json-schema';

function need(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (bench/generic_gw.py sets it)`);
  return value;
}

const schema = need('GENERIC_OMS_SCHEMA'); // JSON Schema file with OrderItem and OrderItemPage
const detailPath = need('GENERIC_OMS_DETAIL_PATH').replace('{id}', '{args.id}');

export const composeConfig = defineConfig({
  subgraphs: [
    {
      sourceHandler: loadJSONSchemaSubgraph('OMS', {
        endpoint: '{env.GENERIC_OMS_URL}',
        operationHeaders: { Authorization: 'Token {env.GENERIC_OMS_TOKEN}' },
        operations: [
          {
            type: 'Query',
            field: 'orderItem',
            path: detailPath,
            method: 'GET',
            argTypeMap: { id: { type: 'integer' } },
            requiredArgs: ['id'],
            responseSchema: `${schema}#/definitions/OrderItem`,
          },
          {
            type: 'Query',
            field: 'orderItems',
            path: need('GENERIC_OMS_LIST_PATH'),
            method: 'GET',
            argTypeMap: { limit: { type: 'integer' }, page: { type: 'integer' } },
            queryParamArgMap: { limit: 'limit', page: 'page' },
            responseSchema: `${schema}#/definitions/OrderItemPage`,
          },
        ],
      }),
    },
  ],
});
