// oidc-provider (a certified third-party authorization server) set up to bind tokens with DPoP (RFC 9449)
// for jarmor's client library: FAPI 2.0 profile, PAR and signed request objects required, JARM,
// private_key_jwt, `features.dPoP` with server-provided nonces required on every DPoP request (so every
// first proof without a nonce is answered `use_dpop_nonce`), DPoP proofs in ES256, PS256 and EdDSA/Ed25519,
// and an interaction endpoint that approves every request at once (login + consent).
//
//   CLIENTS_FILE=clients.json PORT=3000 node op-oidc-provider-dpop.mjs
//
// CLIENTS_FILE: a JSON array of client metadata (each with its own public `jwks` and, for clients the
// server must refuse without a proof, `dpop_bound_access_tokens: true`), written by the test.
// The userinfo endpoint is the protected resource the client library calls with `Authorization: DPoP`.
// Prints "listening <issuer>" when ready.
import { randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';
import {
  baseOptions, codeFlow, environment, fapiFeatures, key, logErrors, serve, signingAlgs,
} from './op-common.mjs';

const env = environment();
const SIGNING = ['ES256', 'PS256', 'Ed25519'];

const provider = new Provider(env.issuer, {
  ...baseOptions(),
  clients: env.clients,
  jwks: { keys: [await key('ES256', 'sig'), await key('PS256', 'sig'), await key('Ed25519', 'sig')] },
  ...codeFlow(),
  claims: { openid: ['sub'] },
  clientAuthMethods: ['private_key_jwt'],
  enabledJWA: {
    ...signingAlgs(SIGNING),
    dPoPSigningAlgValues: ['ES256', 'PS256', 'EdDSA', 'Ed25519'],
  },
  features: {
    ...fapiFeatures(),
    userinfo: { enabled: true },
    dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
  },
});

logErrors(provider, [
  'server_error', 'authorization.error', 'pushed_authorization_request.error', 'grant.error', 'userinfo.error',
]);
serve(provider, env);
