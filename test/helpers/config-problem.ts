import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/config.js';
import { ErrorCodes, isTokenAuthorityError } from '../../src/shared/errors.js';

/** The message of the configuration error `env` must cause (a TokenAuthorityError ERR_CONFIG); fails the test if it loads. */
export function configProblem(env: Record<string, string>, scope: 'authority' | 'sidecar' = 'authority'): string {
  try {
    loadConfig(scope, { env });
  } catch (err) {
    assert.ok(isTokenAuthorityError(err) && err.code === ErrorCodes.CONFIG, String(err));
    return err.message;
  }
  assert.fail('expected a configuration error');
}
