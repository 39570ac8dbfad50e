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
export { createKeyEncryptionKey, KEK_BYTES, parseKeyEncryptionKey, readKeyEncryptionKeyFile, type KeyEncryptionKey } from './key-encryption-key.js';
export { isSealedKeySet, KeySetCipher, SEALED_KEY_SET_FORMAT, type SealedKeySet, type SealedPrivateJwk, type SealedStoredKey } from './key-set-cipher.js';
export { RedisKeyStore, REDIS_KEY_SET_SUFFIX, type RedisKeyStoreOptions } from './redis-key-store.js';
