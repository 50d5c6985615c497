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
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

const HOST = process.env.HOST || '127.0.0.1';
const PORT = Number(process.env.PORT || 3000);
const ISSUER = `http://${HOST}:${PORT}`;
const RESOURCE = process.env.RESOURCE || 'https://api.example';
const clients = JSON.parse(readFileSync(process.env.CLIENTS_FILE, 'utf8'));

async function key(alg, use) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
  return { ...(await jose.exportJWK(privateKey)), kid: `op-${alg.toLowerCase()}`, alg, use };
}

const RESOURCE_SERVERS = {
  [`${RESOURCE}/opaque`]: { scope: 'orders:read orders:write', accessTokenFormat: 'opaque', accessTokenTTL: 600 },
  [`${RESOURCE}/jwt`]: {
    scope: 'orders:read orders:write', accessTokenFormat: 'jwt', accessTokenTTL: 600, jwt: { sign: { alg: 'ES256' } },
  },
};

const provider = new Provider(ISSUER, {
  clients,
  jwks: { keys: [await key('ES256', 'sig'), await key('PS256', 'sig')] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
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
  async findAccount(_ctx, sub) {
    return { accountId: sub, async claims() { return { sub }; } };
  },
  async renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
});

for (const event of ['server_error', 'grant.error', 'introspection.error']) {
  provider.on(event, (_ctx, err) => {
    console.error(`[${event}] ${err?.error}: ${err?.error_description ?? ''} ${err?.error_detail ?? ''} ${err?.message ?? ''}`);
  });
}

const server = http.createServer(provider.callback());
server.listen(PORT, HOST, () => console.log(`listening ${ISSUER}`));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => { server.close(); process.exit(0); });
