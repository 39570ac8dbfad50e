/** Signing keys of the authority: generation, storage, lifecycle, JWKS and the token signer. */
export { createSigner, type Signer } from './access-token-signer.js';
export { FileKeyStore, KEYS_FILE_NAME, type FileKeyStoreOptions } from './file-key-store.js';
export { generateSigningKey, newKid, RSA_MODULUS_BITS, type GeneratedKey } from './key-generator.js';
export { KeyManager, type Jwks, type KeyInfo, type KeyManagerOptions } from './key-manager.js';
export { importPrivateKey, importPublicKey } from './key-material.js';
export { assertNextVersion, parseKeySetDocument, PRIVATE_JWK_MEMBERS } from './key-set-document.js';
export type { KeySetDocument, KeyState, KeyStore, PrivateJwk, PublicJwk, StoredKey } from './key-store.js';
export { KEY_STATES } from './key-store.js';
export { MemoryKeyStore } from './memory-key-store.js';
