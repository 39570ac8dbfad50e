import type { Config } from '../config/config.js';
import type { KeyManager } from '../keys/key-manager.js';
import type { TokenStore } from '../store/token-store.js';
import type { VerifierStatus } from '../verifier/create-verifier.js';
import { healthRoute, jwksRoute, type Route } from '../http/http-server.js';

export interface AuthorityHttpDeps {
  config: Readonly<Config>;
  keys: KeyManager;
  store: TokenStore;
  /** The /metrics route: this process's registry, or the cluster aggregate. */
  metrics: () => Route;
  /** This process's verifier, when it has one (not the cluster primary). */
  verifierStatus?: () => VerifierStatus;
}

/** The authority's HTTP routes: JWKS, discovery, metrics and health. */
export function authorityHttpRoutes(deps: AuthorityHttpDeps): Record<string, Route> {
  const { config, keys, store } = deps;
  return {
    '/.well-known/jwks.json': jwksRoute(() => ({ json: keys.jwksJson(), maxAgeSec: keys.jwksMaxAgeSec() })),
    '/.well-known/openid-configuration': () => ({
      status: 200,
      // Only what is true: where the keys are. This is no OpenID provider (no ID tokens, no
      // authorization or token endpoint; Issue is a gRPC call), so no field claims otherwise.
      body: JSON.stringify({
        issuer: config.issuer,
        jwks_uri: `${config.issuer}/.well-known/jwks.json`,
      }),
      headers: { 'cache-control': 'public, max-age=300' },
    }),
    '/metrics': deps.metrics(),
    '/healthz': healthRoute(async () => {
      const storeOk = await store.ping();
      const details: Record<string, unknown> = { store: storeOk ? 'ok' : 'unreachable' };
      const status = deps.verifierStatus?.();
      if (status) Object.assign(details, { appliedSeq: status.revocation.appliedSeq, revocationAgeMs: Math.round(status.revocation.ageMs) });
      return { ok: storeOk, details };
    }),
  };
}
