// openid-client (a certified third-party RP) driving a jarmor authorization server:
// signed request object (optionally encrypted to the server's enc key) -> PAR with private_key_jwt ->
// /authorize (server runs with --auto-approve) -> JARM response validated by openid-client (decrypted
// first when encrypted) -> token exchange with PKCE, ID token validated; then refresh and client_credentials.
//
//   node rp-openid-client.mjs --issuer URL --client-id ID --keys client.private.jwks.json [--alg ES256]
//        [--modes jwt,query.jwt,fragment.jwt,form_post.jwt] [--encrypt ECDH-ES/A128GCM]
//        [--refresh] [--client-credentials] [--error-response] [--scope openid] [--dpop ALG]
//
// --keys: the client's private JWKS (a `use: sig` key for --alg, plus a `use: enc` key with --encrypt).
// --encrypt ALG/ENC: the request object is a JWE (ALG/ENC) to the server's enc key with `alg` ALG, and the
//   JARM response, encrypted by the server as registered, is decrypted with enableDecryptingResponses.
// --dpop ALG: sender-constrained tokens (RFC 9449) with openid-client's DPoP handle over a fresh ALG key pair:
//   a proof on PAR (binding the code) and on every token request (code, refresh, client_credentials);
//   openid-client retries once on `use_dpop_nonce` with the server's nonce.
// --error-response: a request object passed by value (no PAR) for a client whose tier requires PAR; the
//   server's signed JARM error must be verified by openid-client before it reports the error.
// Prints one JSON summary on stdout; exits 1 if anything failed.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import * as client from 'openid-client';
import * as jose from 'jose';

const { values: opt } = parseArgs({
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    keys: { type: 'string' },
    alg: { type: 'string', default: 'ES256' },
    modes: { type: 'string', default: 'jwt,query.jwt,fragment.jwt,form_post.jwt' },
    encrypt: { type: 'string' },
    refresh: { type: 'boolean', default: false },
    'client-credentials': { type: 'boolean', default: false },
    'error-response': { type: 'boolean', default: false },
    scope: { type: 'string', default: 'openid' },
    'redirect-uri': { type: 'string', default: 'http://127.0.0.1:9999/cb' },
    dpop: { type: 'string' },
  },
});
for (const name of ['issuer', 'client-id', 'keys']) {
  if (!opt[name]) { console.error(`--${name} is required`); process.exit(2); }
}
const REDIRECT_URI = opt['redirect-uri'];
const ALG = opt.alg;
const [ENC_ALG, ENC] = opt.encrypt ? opt.encrypt.split('/') : [];

const jwks = JSON.parse(readFileSync(opt.keys, 'utf8'));
const sigJwk = jwks.keys.find((k) => k.use === 'sig' && k.alg === ALG);
const signingKey = { key: await jose.importJWK(sigJwk, ALG), kid: sigJwk.kid };

const config = await client.discovery(
  new URL(opt.issuer),
  opt['client-id'],
  {
    redirect_uris: [REDIRECT_URI],
    token_endpoint_auth_method: 'private_key_jwt',
    authorization_signed_response_alg: ALG,
    id_token_signed_response_alg: ALG,
  },
  client.PrivateKeyJwt(signingKey),
  { execute: [client.allowInsecureRequests, client.useJwtResponseMode] },
);

// one DPoP key pair for the whole run: refresh tokens of a DPoP client are used with the same key
const DPoP = opt.dpop ? client.getDPoPHandle(config, await client.randomDPoPKeyPair(opt.dpop)) : undefined;
const dpopKeyThumbprint = DPoP ? await dpopThumbprint() : null;
async function dpopThumbprint() {
  // the handle does not expose its key: read the jwk of one proof it builds
  const headers = new Headers();
  await DPoP.addProof(new URL(opt.issuer), headers, 'GET');
  return jose.calculateJwkThumbprint(jose.decodeProtectedHeader(headers.get('dpop')).jwk);
}

let serverEncKey;
if (opt.encrypt) {
  const encJwk = jwks.keys.find((k) => k.use === 'enc');
  const key = await jose.importJWK(encJwk, encJwk.alg);
  client.enableDecryptingResponses(config, [ENC], { key, alg: encJwk.alg, kid: encJwk.kid });
  const serverJwks = await (await fetch(config.serverMetadata().jwks_uri)).json();
  const jwk = serverJwks.keys.find((k) => k.use === 'enc' && k.alg === ENC_ALG);
  if (!jwk) throw new Error(`the server publishes no enc key for ${ENC_ALG}`);
  serverEncKey = { key: await jose.importJWK(jwk, ENC_ALG), kid: jwk.kid };
}

const headerOf = (token) => {
  const { alg, enc, kid, typ, cty } = jose.decodeProtectedHeader(token);
  return { alg, enc, kid, typ, cty, parts: token.split('.').length };
};

// The user agent: follow redirects (carrying cookies) until the redirect URI; a 200 page with a form
// whose action is the redirect URI is replayed as the POST a browser would send (form_post modes).
async function userAgent(start) {
  const cookies = new Map();
  let url = start;
  for (let hop = 0; hop < 10; hop += 1) {
    const res = await fetch(url, {
      redirect: 'manual',
      headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    const body = await res.text();
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      const next = new URL(location, url);
      if (next.href.startsWith(REDIRECT_URI)) {
        if (!next.hash) return { via: 'query', callback: next, response: next.searchParams.get('response') };
        // fragment: the page script at the redirect URI hands the fragment to the client
        const fragment = new URLSearchParams(next.hash.slice(1));
        next.hash = '';
        next.search = fragment.toString();
        return { via: 'fragment', callback: next, response: fragment.get('response') };
      }
      url = next.href;
      continue;
    }
    const action = body.match(/<form[^>]*\baction="([^"]*)"/i);
    if (res.status === 200 && action && decodeHtml(action[1]) === REDIRECT_URI) {
      const form = new URLSearchParams();
      for (const [tag] of body.matchAll(/<input\b[^>]*>/gi)) {
        const name = tag.match(/\bname="([^"]*)"/i);
        const value = tag.match(/\bvalue="([^"]*)"/i);
        if (name) form.append(decodeHtml(name[1]), value ? decodeHtml(value[1]) : '');
      }
      const callback = new Request(REDIRECT_URI, {
        method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      return { via: 'form_post', callback, response: form.get('response') };
    }
    throw new Error(`unexpected HTTP ${res.status} at ${new URL(url).pathname}: ${body.slice(0, 300)}`);
  }
  throw new Error('too many redirects');
}

function decodeHtml(v) {
  return v.replace(/&(#x[0-9a-f]+|#[0-9]+|quot|amp|lt|gt|apos);/gi, (_, e) => {
    const named = { quot: '"', amp: '&', lt: '<', gt: '>', apos: "'" }[e.toLowerCase()];
    if (named) return named;
    return String.fromCodePoint(e[1].toLowerCase() === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
  });
}

async function flow(mode) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const params = {
    redirect_uri: REDIRECT_URI,
    scope: opt.scope,
    response_type: 'code',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  };
  // useJwtResponseMode makes openid-client put response_mode=jwt in the request; ask for `mode` instead.
  const jar = await client.buildAuthorizationUrlWithJAR(config, params, signingKey, {
    [client.modifyAssertion](_header, payload) { payload.response_mode = mode; },
  });
  let request = jar.searchParams.get('request');
  const requestObject = { jws: headerOf(request) };
  if (serverEncKey) {
    request = await new jose.CompactEncrypt(new TextEncoder().encode(request))
      .setProtectedHeader({ alg: ENC_ALG, enc: ENC, cty: 'oauth-authz-req+jwt', kid: serverEncKey.kid })
      .encrypt(serverEncKey.key);
    requestObject.jwe = headerOf(request);
  }
  const authUrl = await client.buildAuthorizationUrlWithPAR(config, { client_id: opt['client-id'], request }, { DPoP });
  const { via, callback, response } = await userAgent(authUrl.href);
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
  }, undefined, { DPoP });
  const decrypted = client.getDecryptedResponses(tokens)?.authorization_response;
  const claims = tokens.claims();
  return {
    response_mode: mode,
    ok: true,
    delivered_via: via,
    request_object: requestObject,
    par_request_uri: authUrl.searchParams.get('request_uri')?.slice(0, 40),
    jarm: { outer: headerOf(response), signed: headerOf(decrypted ?? response), decrypted_by_openid_client: !!decrypted },
    token_type: tokens.token_type,
    id_token: { iss: claims.iss, aud: claims.aud, sub: claims.sub, nonce_ok: claims.nonce === nonce },
    scope: tokens.scope,
    refresh_token: tokens.refresh_token,
    access_token: tokens.access_token,
  };
}

const summary = {
  issuer: opt.issuer, client_id: opt['client-id'], alg: ALG, encrypt: opt.encrypt ?? null, dpop: opt.dpop ?? null,
  dpop_jkt: dpopKeyThumbprint, flows: [],
};
let failed = false;
const fail = (err) => { failed = true; return { ok: false, error: `${err?.code ?? err?.name}: ${err?.message}`, cause: err?.cause?.message ?? err?.cause?.error_description }; };
const secret = ({ access_token, refresh_token, ...rest }) => ({ ...rest, has_refresh_token: !!refresh_token });

let refreshToken;
let accessToken;
for (const mode of opt.modes.split(',')) {
  try {
    const result = await flow(mode);
    refreshToken ??= result.refresh_token;
    accessToken ??= result.access_token;
    summary.flows.push(secret(result));
  } catch (err) {
    summary.flows.push({ response_mode: mode, ...fail(err) });
  }
}
if (DPoP && accessToken) {
  // jarmor's introspection (RFC 7662) of the first access token: bound to the DPoP key (RFC 9449 §6.2)
  try {
    const info = await client.tokenIntrospection(config, accessToken);
    summary.introspection = { ok: info.active === true, token_type: info.token_type, cnf_jkt: info.cnf?.jkt ?? null };
  } catch (err) {
    summary.introspection = fail(err);
  }
}
if (opt.refresh) {
  try {
    if (!refreshToken) throw new Error('no refresh_token was issued');
    const first = await client.refreshTokenGrant(config, refreshToken, undefined, { DPoP });
    const second = await client.refreshTokenGrant(config, first.refresh_token, undefined, { DPoP });
    summary.refresh = {
      token_type: first.token_type,
      ok: first.access_token !== accessToken && first.refresh_token !== refreshToken && !!second.access_token,
      rotated: first.refresh_token !== refreshToken,
      id_token_validated: first.id_token ? !!first.claims()?.sub : null,
    };
    if (!summary.refresh.ok) failed = true;
  } catch (err) {
    summary.refresh = fail(err);
  }
}
if (opt['client-credentials']) {
  try {
    const tokens = await client.clientCredentialsGrant(config, undefined, { DPoP });
    summary.client_credentials = { ok: !!tokens.access_token, token_type: tokens.token_type, expires_in: tokens.expires_in };
  } catch (err) {
    summary.client_credentials = fail(err);
  }
}
if (opt['error-response']) {
  const state = client.randomState();
  let jarm;
  try {
    const url = await client.buildAuthorizationUrlWithJAR(config, {
      redirect_uri: REDIRECT_URI, scope: opt.scope, response_type: 'code', state,
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    }, signingKey);
    const { callback, response } = await userAgent(url.href);
    jarm = headerOf(response);
    await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: 'x'.repeat(43), expectedState: state });
    failed = true;
    summary.error_response = { ok: false, error: 'the authorization response carried a code' };
  } catch (err) {
    const verified = err?.code === 'OAUTH_AUTHORIZATION_RESPONSE_ERROR';
    if (!verified) failed = true;
    summary.error_response = verified
      ? { ok: true, error: err.error, error_description: err.error_description, jarm }
      : fail(err);
  }
}
summary.ok = !failed;
console.log(JSON.stringify(summary, null, 2));
process.exitCode = failed ? 1 : 0;
