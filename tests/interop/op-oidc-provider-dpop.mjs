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

const provider = new Provider(ISSUER, {
  clients,
  jwks: { keys: [await key('ES256', 'sig'), await key('PS256', 'sig'), await key('Ed25519', 'sig')] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access'],
  claims: { openid: ['sub'] },
  responseTypes: ['code'],
  clientAuthMethods: ['private_key_jwt'],
  pkce: { required: () => true },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  enabledJWA: {
    clientAuthSigningAlgValues: SIGNING,
    requestObjectSigningAlgValues: SIGNING,
    authorizationSigningAlgValues: SIGNING,
    idTokenSigningAlgValues: SIGNING,
    dPoPSigningAlgValues: ['ES256', 'PS256', 'EdDSA', 'Ed25519'],
  },
  features: {
    devInteractions: { enabled: false },
    requestObjects: { enabled: true, requireSignedRequestObject: true },
    pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: true },
    jwtResponseModes: { enabled: true },
    clientCredentials: { enabled: true },
    userinfo: { enabled: true },
    fapi: { enabled: true, profile: '2.0' },
    dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
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

for (const event of [
  'server_error', 'authorization.error', 'pushed_authorization_request.error', 'grant.error', 'userinfo.error',
]) {
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
