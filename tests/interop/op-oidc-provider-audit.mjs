// oidc-provider as the target of `jarmor audit` (issue 16), in one of two configurations:
//
//   PROFILE=fapi  FAPI 2.0 profile: PAR and signed request objects required, PKCE required, private_key_jwt
//   PROFILE=lax   a deliberately lax deployment: neither PKCE, PAR nor signed request objects required,
//                 client_secret_basic and public clients allowed -- weaknesses the audit must report
//                 (oidc-provider 9 cannot be configured to accept alg none or forged request objects)
//
//   CLIENTS_FILE=clients.json PORT=3000 PROFILE=lax node op-oidc-provider-audit.mjs
//
// GET /interaction/:uid signs ACCOUNT in and grants what was asked at once (a scripted sign-in): an auditor
// that follows the server's own redirects (`jarmor audit --follow-interactions`) completes the authorization;
// one that does not reports the completed-authorization checks as not_run. With INTERACTIONS=dev, oidc-provider's
// own devInteractions pages (a login form, then a consent form) are served instead: `jarmor audit
// --login-script` fills them. Prints "listening <issuer>".
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as jose from 'jose';
import Provider from 'oidc-provider';

const HOST = '127.0.0.1';
const PORT = Number(process.env.PORT || 3000);
const ISSUER = `http://${HOST}:${PORT}`;
const LAX = process.env.PROFILE === 'lax';
const DEV = process.env.INTERACTIONS === 'dev';
const clients = JSON.parse(readFileSync(process.env.CLIENTS_FILE, 'utf8'));

async function key(alg, use, crv) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true, crv, modulusLength: 2048 });
  return { ...(await jose.exportJWK(privateKey)), kid: `op-${alg.toLowerCase()}`, alg, use };
}

const SIGNING = ['ES256', 'PS256'];
const provider = new Provider(ISSUER, {
  clients,
  jwks: { keys: [await key('ES256', 'sig'), await key('PS256', 'sig'), await key('ECDH-ES', 'enc', 'P-256')] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid'],
  responseTypes: ['code'],
  clientAuthMethods: LAX ? ['private_key_jwt', 'client_secret_basic', 'none'] : ['private_key_jwt'],
  pkce: { required: () => !LAX },
  enabledJWA: {
    clientAuthSigningAlgValues: SIGNING,
    requestObjectSigningAlgValues: SIGNING,
    authorizationSigningAlgValues: SIGNING,
    idTokenSigningAlgValues: SIGNING,
    requestObjectEncryptionAlgValues: ['ECDH-ES'],
    requestObjectEncryptionEncValues: ['A128GCM', 'A256GCM'],
    authorizationEncryptionAlgValues: ['ECDH-ES'],
    authorizationEncryptionEncValues: ['A128GCM', 'A256GCM'],
  },
  features: {
    devInteractions: { enabled: DEV },
    requestObjects: { enabled: true, requireSignedRequestObject: !LAX },
    pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: !LAX },
    jwtResponseModes: { enabled: true },
    encryption: { enabled: true },
    ...(LAX ? {} : { fapi: { enabled: true, profile: '2.0' } }),
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

const ACCOUNT = 'alice';

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
  if (!DEV && req.method === 'GET' && req.url.startsWith('/interaction/')) {
    approve(req, res).catch((err) => {
      res.statusCode = 400;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ error: 'invalid_request', error_description: String(err?.message) }));
    });
    return;
  }
  callback(req, res);
});
server.listen(PORT, HOST, () => console.log(`listening ${ISSUER}`));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => { server.close(); process.exit(0); });
