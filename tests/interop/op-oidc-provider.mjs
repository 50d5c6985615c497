// oidc-provider (a certified third-party authorization server) set up for jarmor's client library:
// FAPI 2.0 profile, signed request objects required, PAR required, JARM (every mode), encrypted request
// objects and encrypted responses, PKCE S256, private_key_jwt, and an interaction endpoint that approves
// every request at once (login + consent), so a plain HTTP user agent can complete the flow.
//
//   CLIENTS_FILE=clients.json PORT=3000 node op-oidc-provider.mjs
//
// CLIENTS_FILE: a JSON array of client metadata (each with its own public `jwks`), written by the test.
// Server keys are generated in memory at every start (ES256, PS256, Ed25519 signing; ECDH-ES, RSA-OAEP-256 enc).
// Every error event is logged to stderr. Prints "listening <issuer>" when ready (shared setup: op-common.mjs).
import Provider from 'oidc-provider';
import {
  baseOptions, codeFlow, environment, fapiFeatures, key, logErrors, serve, signingAlgs,
} from './op-common.mjs';

const env = environment();
const SIGNING = ['ES256', 'PS256', 'Ed25519'];
const KEY_MANAGEMENT = ['ECDH-ES', 'ECDH-ES+A128KW', 'RSA-OAEP-256'];
const CONTENT = ['A128GCM', 'A256GCM', 'A128CBC-HS256'];

const provider = new Provider(env.issuer, {
  ...baseOptions(),
  clients: env.clients,
  jwks: {
    keys: [
      await key('ES256', 'sig'), await key('PS256', 'sig'), await key('Ed25519', 'sig'),
      await key('ECDH-ES', 'enc', 'P-256'), await key('RSA-OAEP-256', 'enc'),
    ],
  },
  ...codeFlow(),
  clientAuthMethods: ['private_key_jwt'],
  enabledJWA: {
    ...signingAlgs(SIGNING),
    requestObjectEncryptionAlgValues: KEY_MANAGEMENT,
    requestObjectEncryptionEncValues: CONTENT,
    authorizationEncryptionAlgValues: KEY_MANAGEMENT,
    authorizationEncryptionEncValues: CONTENT,
    idTokenEncryptionAlgValues: KEY_MANAGEMENT,
    idTokenEncryptionEncValues: CONTENT,
  },
  features: { ...fapiFeatures(), encryption: { enabled: true } },
});

logErrors(provider, ['server_error', 'authorization.error', 'pushed_authorization_request.error', 'grant.error']);
serve(provider, env);
