/**
 * A key store held in process memory: for tests and for an ephemeral single-process authority
 * whose keys (and so every token it issued) die with it.
 */
import { assertNextVersion } from './key-set-document.js';
import type { KeySetDocument, KeyStore } from './key-store.js';

/** An in-memory {@link KeyStore}. Documents are copied in and out, so callers cannot alias state. */
export class MemoryKeyStore implements KeyStore {
  private doc: KeySetDocument | undefined;

  async load(): Promise<KeySetDocument | undefined> {
    return this.doc === undefined ? undefined : structuredClone(this.doc);
  }

  async save(doc: KeySetDocument, expectedVersion: number): Promise<boolean> {
    assertNextVersion(doc, expectedVersion);
    if ((this.doc?.version ?? 0) !== expectedVersion) return false;
    this.doc = structuredClone(doc);
    return true;
  }
}
