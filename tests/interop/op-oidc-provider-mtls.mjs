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
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';
import { baseOptions, codeFlow, environment, key, logErrors, serve, signingAlgs } from './op-common.mjs';

const env = environment('https');

// the verified-or-not peer certificate of this request's TLS connection (undefined without one)
function peerCertificate(ctx) {
  const cert = ctx.socket.getPeerX509Certificate?.();
  return cert ?? undefined;
}

const provider = new Provider(env.issuer, {
  ...baseOptions(),
  clients: env.clients,
  jwks: { keys: [await key('ES256', 'sig')] },
  ...codeFlow(),
  claims: { openid: ['sub'] },
  clientAuthMethods: ['tls_client_auth', 'self_signed_tls_client_auth', 'private_key_jwt'],
  enabledJWA: signingAlgs(['ES256']),
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
});

logErrors(provider, [
  'server_error', 'authorization.error', 'pushed_authorization_request.error', 'grant.error', 'userinfo.error',
]);
serve(provider, env, {
  createServer: (handler) => https.createServer({
    cert: readFileSync(process.env.SERVER_CERT),
    key: readFileSync(process.env.SERVER_KEY),
    ca: readFileSync(process.env.CA_FILE),
    requestCert: true,
    rejectUnauthorized: false,
  }, handler),
});
