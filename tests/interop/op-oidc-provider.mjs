// oidc-provider (a certified third-party authorization server) set up for jarmor's client library:
// FAPI 2.0 profile, signed request objects required, PAR required, JARM (every mode), encrypted request
// objects and encrypted responses, PKCE S256, private_key_jwt, and an interaction endpoint that approves
// every request at once (login + consent), so a plain HTTP user agent can complete the flow.
//
//   CLIENTS_FILE=clients.json PORT=3000 node op-oidc-provider.mjs
//
// CLIENTS_FILE: a JSON array of client metadata (each with its own public `jwks`), written by the test.
// Server keys are generated in memory at every start (ES256, PS256, Ed25519 signing; ECDH-ES, RSA-OAEP-256 enc).
// Every error event is logged to stderr. Prints "listening <issuer>" when ready.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as jose from 'jose';
import Provider from 'oidc-provider';

const HOST = process.env.HOST || '127.0.0.1';
const PORT = Number(process.env.PORT || 3000);
const ISSUER = `http://${HOST}:${PORT}`;
const ACCOUNT = process.env.ACCOUNT || 'alice';
const clients = JSON.parse(readFileSync(process.env.CLIENTS_FILE, 'utf8'));

async function key(alg, use, crv) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true, crv, modulusLength: 2048 });
  return { ...(await jose.exportJWK(privateKey)), kid: `op-${alg.toLowerCase()}`, alg, use };
}

const SIGNING = ['ES256', 'PS256', 'Ed25519'];
const KEY_MANAGEMENT = ['ECDH-ES', 'ECDH-ES+A128KW', 'RSA-OAEP-256'];
const CONTENT = ['A128GCM', 'A256GCM', 'A128CBC-HS256'];

const provider = new Provider(ISSUER, {
  clients,
  jwks: {
    keys: [
      await key('ES256', 'sig'), await key('PS256', 'sig'), await key('Ed25519', 'sig'),
      await key('ECDH-ES', 'enc', 'P-256'), await key('RSA-OAEP-256', 'enc'),
    ],
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access'],
  responseTypes: ['code'],
  clientAuthMethods: ['private_key_jwt'],
  pkce: { required: () => true },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  enabledJWA: {
    clientAuthSigningAlgValues: SIGNING,
    requestObjectSigningAlgValues: SIGNING,
    authorizationSigningAlgValues: SIGNING,
    idTokenSigningAlgValues: SIGNING,
    requestObjectEncryptionAlgValues: KEY_MANAGEMENT,
    requestObjectEncryptionEncValues: CONTENT,
    authorizationEncryptionAlgValues: KEY_MANAGEMENT,
    authorizationEncryptionEncValues: CONTENT,
    idTokenEncryptionAlgValues: KEY_MANAGEMENT,
    idTokenEncryptionEncValues: CONTENT,
  },
  features: {
    devInteractions: { enabled: false },
    requestObjects: { enabled: true, requireSignedRequestObject: true },
    pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: true },
    jwtResponseModes: { enabled: true },
    clientCredentials: { enabled: true },
    encryption: { enabled: true },
    fapi: { enabled: true, profile: '2.0' },
    rpInitiatedLogout: { enabled: false },
  },
  async findAccount(_ctx, sub) {
    return { accountId: sub, async claims() { return { sub }; } };
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
});

for (const event of ['server_error', 'authorization.error', 'pushed_authorization_request.error', 'grant.error']) {
  provider.on(event, (_ctx, err) => {
    console.error(`[${event}] ${err?.error}: ${err?.error_description ?? ''} ${err?.error_detail ?? ''} ${err?.message ?? ''}`);
  });
}

// GET /interaction/:uid logs ACCOUNT in and grants everything requested, then resumes the authorization.
async function approve(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: ACCOUNT, clientId: params.client_id });
  grant.addOIDCScope(prompt.details.missingOIDCScope?.join(' ') ?? params.scope);
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  const result = { consent: { grantId: await grant.save() } };
  if (!details.session?.accountId) result.login = { accountId: ACCOUNT };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url.startsWith('/interaction/')) {
    approve(req, res).catch((err) => {
      console.error('[interaction]', err);
      res.statusCode = 500;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ error: 'server_error', error_description: String(err?.message) }));
    });
    return;
  }
  callback(req, res);
});
server.listen(PORT, HOST, () => console.log(`listening ${ISSUER}`));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => { server.close(); process.exit(0); });
