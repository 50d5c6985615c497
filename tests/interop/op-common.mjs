// What every oidc-provider peer script shares (op-oidc-provider*.mjs): the environment it is started with,
// in-memory server keys, the provider options that are the same everywhere (cookies, accounts, JSON errors,
// the interaction URL), error events logged to stderr, the scripted sign-in that approves every request at
// once, and the HTTP(S) server with its "listening <issuer>" line and clean exit on SIGINT/SIGTERM.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as jose from 'jose';

// HOST (default 127.0.0.1), PORT (3000), ACCOUNT (alice, who signs in), CLIENTS_FILE (a JSON array of client
// metadata written by the test)
export function environment(scheme = 'http') {
  const host = process.env.HOST || '127.0.0.1';
  const port = Number(process.env.PORT || 3000);
  return {
    host,
    port,
    issuer: `${scheme}://${host}:${port}`,
    account: process.env.ACCOUNT || 'alice',
    clients: JSON.parse(readFileSync(process.env.CLIENTS_FILE, 'utf8')),
  };
}

// a private JWK generated at every start, with kid `op-<alg>`
export async function key(alg, use, crv) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true, crv, modulusLength: 2048 });
  return { ...(await jose.exportJWK(privateKey)), kid: `op-${alg.toLowerCase()}`, alg, use };
}

// provider options every peer uses: fresh cookie keys, any subject is an account, errors as JSON, and
// interactions at /interaction/<uid> (answered by `serve`)
export function baseOptions() {
  return {
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    async findAccount(_ctx, sub) {
      return { accountId: sub, async claims() { return { sub }; } };
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  };
}

// the authorization code flow the client-facing peers run: openid (+ offline_access, a refresh token for
// clients allowed one), PKCE required
export function codeFlow() {
  return {
    scopes: ['openid', 'offline_access'],
    responseTypes: ['code'],
    pkce: { required: () => true },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  };
}

// features of the FAPI 2.0 peers: signed request objects and PAR required, JARM, client credentials, no
// built-in interaction pages (`serve` answers them), no logout
export function fapiFeatures() {
  return {
    devInteractions: { enabled: false },
    requestObjects: { enabled: true, requireSignedRequestObject: true },
    pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: true },
    jwtResponseModes: { enabled: true },
    clientCredentials: { enabled: true },
    fapi: { enabled: true, profile: '2.0' },
    rpInitiatedLogout: { enabled: false },
  };
}

// enabledJWA entries: `algs` for client assertions, request objects, JARM and ID tokens
export function signingAlgs(algs) {
  return {
    clientAuthSigningAlgValues: algs,
    requestObjectSigningAlgValues: algs,
    authorizationSigningAlgValues: algs,
    idTokenSigningAlgValues: algs,
  };
}

export function logErrors(provider, events) {
  for (const event of events) {
    provider.on(event, (_ctx, err) => {
      console.error(`[${event}] ${err?.error}: ${err?.error_description ?? ''} ${err?.error_detail ?? ''} ${err?.message ?? ''}`);
    });
  }
}

// GET /interaction/:uid signs `account` in and grants everything requested, then resumes the authorization.
async function approve(provider, account, req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: account, clientId: params.client_id });
  grant.addOIDCScope(prompt.details.missingOIDCScope?.join(' ') ?? params.scope);
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  const result = { consent: { grantId: await grant.save() } };
  if (!details.session?.accountId) result.login = { accountId: account };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

// Serve `provider` on env.host:env.port. `interactions` (default true): answer /interaction/<uid> with the
// scripted sign-in; a failure there is `failure` (status and error code) with the message as description.
// `createServer`: http.createServer by default (an https one for TLS peers).
export function serve(provider, env, {
  interactions = true,
  failure = { status: 500, error: 'server_error', log: true },
  createServer = (handler) => http.createServer(handler),
} = {}) {
  const callback = provider.callback();
  const server = createServer((req, res) => {
    if (interactions && req.method === 'GET' && req.url.startsWith('/interaction/')) {
      approve(provider, env.account, req, res).catch((err) => {
        if (failure.log) console.error('[interaction]', err);
        res.statusCode = failure.status;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ error: failure.error, error_description: String(err?.message) }));
      });
      return;
    }
    callback(req, res);
  });
  server.listen(env.port, env.host, () => console.log(`listening ${env.issuer}`));
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => { server.close(); process.exit(0); });
  return server;
}
