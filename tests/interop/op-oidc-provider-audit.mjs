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
import Provider from 'oidc-provider';
import { baseOptions, environment, key, serve, signingAlgs } from './op-common.mjs';

const env = environment();
const LAX = process.env.PROFILE === 'lax';
const DEV = process.env.INTERACTIONS === 'dev';

const SIGNING = ['ES256', 'PS256'];
const provider = new Provider(env.issuer, {
  ...baseOptions(),
  clients: env.clients,
  jwks: { keys: [await key('ES256', 'sig'), await key('PS256', 'sig'), await key('ECDH-ES', 'enc', 'P-256')] },
  scopes: ['openid'],
  responseTypes: ['code'],
  clientAuthMethods: LAX ? ['private_key_jwt', 'client_secret_basic', 'none'] : ['private_key_jwt'],
  pkce: { required: () => !LAX },
  enabledJWA: {
    ...signingAlgs(SIGNING),
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
});

// a refused scripted sign-in is the auditor's request's fault: 400 invalid_request, not logged
serve(provider, env, { interactions: !DEV, failure: { status: 400, error: 'invalid_request', log: false } });
