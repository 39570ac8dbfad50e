import type { Config } from '../config/config.js';
import type { KeyManager } from '../keys/key-manager.js';
import type { StoreHealth } from '../store/token-store.js';
import type { VerifierStatus } from '../verifier/create-verifier.js';
import { healthRoute, jwksRoute, type Route } from '../http/http-server.js';
import { fleetRoute, type FleetStore } from './fleet-status.js';

export interface AuthorityHttpDeps {
  config: Readonly<Config>;
  keys: KeyManager;
  /** Health (ping) and the fleet view. */
  store: StoreHealth & FleetStore;
  /** The /metrics route: this process's registry, or the cluster aggregate. */
  metrics: () => Route;
  /** This process's verifier, when it has one (not the cluster primary). */
  verifierStatus?: () => VerifierStatus;
  /** The OAuth endpoints' metadata (oauth-endpoints.ts), when this process serves them. */
  oauth?: Record<string, unknown>;
}

/** The authority's HTTP routes: JWKS, discovery (OpenID and RFC 8414), metrics, health and the fleet view. */
export function authorityHttpRoutes(deps: AuthorityHttpDeps): Record<string, Route> {
  const { config, keys, store } = deps;
  // Only what is true: no ID tokens, no authorization endpoint; OAuth endpoints when served.
  const discovery = JSON.stringify({ issuer: config.issuer, jwks_uri: `${config.issuer}/.well-known/jwks.json`, ...deps.oauth });
  const discoveryRoute: Route = () => ({ status: 200, body: discovery, headers: { 'cache-control': 'public, max-age=300' } });
  return {
    '/.well-known/jwks.json': jwksRoute(() => ({ json: keys.jwksJson(), maxAgeSec: keys.jwksMaxAgeSec() })),
    '/.well-known/openid-configuration': discoveryRoute,
    '/.well-known/oauth-authorization-server': discoveryRoute,
    '/metrics': deps.metrics(),
    // Read-only, as public as /metrics: head sequence, key ids and states, verifier receipts.
    '/fleet': fleetRoute(store, () => keys.list()),
    '/healthz': healthRoute(async () => {
      const storeOk = await store.ping();
      const details: Record<string, unknown> = { store: storeOk ? 'ok' : 'unreachable' };
      const status = deps.verifierStatus?.();
      if (status) Object.assign(details, { appliedSeq: status.revocation.appliedSeq, revocationAgeMs: Math.round(status.revocation.ageMs) });
      return { ok: storeOk, details };
    }),
  };
}
