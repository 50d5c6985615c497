// oidc-provider (a certified third-party authorization server) set up for mutual TLS (RFC 8705) with
// jarmor's client library: `features.mTLS` with certificate-bound access tokens, `tls_client_auth` and
// `self_signed_tls_client_auth`; a Node https server that asks for a client certificate without requiring
// one (`requestCert`, `rejectUnauthorized: false`) and hands it to oidc-provider from the TLS socket; PAR,
// JARM, an interaction endpoint that approves every request at once; userinfo as the bound resource.
//
//   CLIENTS_FILE=clients.json SERVER_CERT=s.pem SERVER_KEY=s.key CA_FILE=ca.pem PORT=3000 \
//     node op-oidc-provider-mtls.mjs
//
// CLIENTS_FILE: a JSON array of client metadata written by the test (certificates generated in the test).
// Prints "listening <issuer>" when ready.
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as jose from 'jose';
import Provider from 'oidc-provider';

const HOST = process.env.HOST || '127.0.0.1';
const PORT = Number(process.env.PORT || 3000);
const ISSUER = `https://${HOST}:${PORT}`;
const ACCOUNT = process.env.ACCOUNT || 'alice';
const clients = JSON.parse(readFileSync(process.env.CLIENTS_FILE, 'utf8'));

async function key(alg, use) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  return { ...(await jose.exportJWK(privateKey)), kid: `op-${alg.toLowerCase()}`, alg, use };
}

// the verified-or-not peer certificate of this request's TLS connection (undefined without one)
function peerCertificate(ctx) {
  const cert = ctx.socket.getPeerX509Certificate?.();
  return cert ?? undefined;
}

const provider = new Provider(ISSUER, {
  clients,
  jwks: { keys: [await key('ES256', 'sig')] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access'],
  claims: { openid: ['sub'] },
  responseTypes: ['code'],
  clientAuthMethods: ['tls_client_auth', 'self_signed_tls_client_auth', 'private_key_jwt'],
  pkce: { required: () => true },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  enabledJWA: {
    clientAuthSigningAlgValues: ['ES256'],
    requestObjectSigningAlgValues: ['ES256'],
    authorizationSigningAlgValues: ['ES256'],
    idTokenSigningAlgValues: ['ES256'],
  },
  features: {
    devInteractions: { enabled: false },
    pushedAuthorizationRequests: { enabled: true },
    jwtResponseModes: { enabled: true },
    clientCredentials: { enabled: true },
    userinfo: { enabled: true },
    rpInitiatedLogout: { enabled: false },
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      tlsClientAuth: true,
      selfSignedTlsClientAuth: true,
      getCertificate: peerCertificate,
      certificateAuthorized: (ctx) => ctx.socket.authorized === true,
      certificateSubjectMatches(ctx, property, expected) {
        const cert = peerCertificate(ctx);
        if (!cert) return false;
        if (property === 'tls_client_auth_san_dns') {
          return (cert.subjectAltName ?? '').split(', ').includes(`DNS:${expected}`);
        }
        return false;
      },
    },
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
const server = https.createServer({
  cert: readFileSync(process.env.SERVER_CERT),
  key: readFileSync(process.env.SERVER_KEY),
  ca: readFileSync(process.env.CA_FILE),
  requestCert: true,
  rejectUnauthorized: false,
}, (req, res) => {
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
