// oidc-provider (a certified third-party authorization server) issuing access tokens for jarmor.resource:
// `features.resourceIndicators` with two resource servers — RESOURCE/opaque (opaque tokens, checked by
// introspection) and RESOURCE/jwt (RFC 9068 JWT access tokens, `accessTokenFormat: 'jwt'`, ES256) —
// `features.introspection`, `features.clientCredentials` and `features.dPoP` (proofs bind the tokens:
// `cnf.jkt` in the JWT and in the introspection response; no server nonces).
//
//   CLIENTS_FILE=clients.json RESOURCE=https://api.example PORT=3000 node op-oidc-provider-resource.mjs
//
// CLIENTS_FILE: a JSON array of client metadata (client_secret_basic), written by the test.
// Server keys are generated in memory at every start. Prints "listening <issuer>" when ready.
import Provider, { errors } from 'oidc-provider';
import { baseOptions, environment, key, logErrors, serve } from './op-common.mjs';

const env = environment();
const RESOURCE = process.env.RESOURCE || 'https://api.example';

const RESOURCE_SERVERS = {
  [`${RESOURCE}/opaque`]: { scope: 'orders:read orders:write', accessTokenFormat: 'opaque', accessTokenTTL: 600 },
  [`${RESOURCE}/jwt`]: {
    scope: 'orders:read orders:write', accessTokenFormat: 'jwt', accessTokenTTL: 600, jwt: { sign: { alg: 'ES256' } },
  },
};

const provider = new Provider(env.issuer, {
  ...baseOptions(),
  clients: env.clients,
  jwks: { keys: [await key('ES256', 'sig'), await key('PS256', 'sig')] },
  clientAuthMethods: ['client_secret_basic'],
  enabledJWA: { dPoPSigningAlgValues: ['ES256', 'PS256', 'EdDSA'] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    dPoP: { enabled: true },
    rpInitiatedLogout: { enabled: false },
    resourceIndicators: {
      enabled: true,
      async getResourceServerInfo(_ctx, resourceIndicator) {
        const info = RESOURCE_SERVERS[resourceIndicator];
        if (!info) throw new errors.InvalidTarget();
        return { ...info };
      },
    },
  },
});

logErrors(provider, ['server_error', 'grant.error', 'introspection.error']);
serve(provider, env, { interactions: false });
