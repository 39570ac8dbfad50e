/**
 * The "file must be private" rule, in one place: a file holding a secret (signing keys, the
 * key-encryption key, the session-seal secret) must not be accessible by group or others, and a
 * directory holding one must not be writable by them (they could rename another file over it).
 * Not checked on Windows, where POSIX mode bits do not describe access.
 */

/** Whether POSIX mode bits are checked on this platform. */
export const CHECKS_FILE_MODES = process.platform !== 'win32';

/** `0640`-style text of a mode's permission bits. */
export function modeText(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, '0');
}

/**
 * Why a file holding `secret` is not private (any group or other bit set), or undefined if it is.
 * The text completes a sentence about the file: `<subject> ${problem}`.
 * @example `key store file /k/keys.json ${privateFileProblem(st.mode, '/k/keys.json', 'private keys')}`
 */
export function privateFileProblem(mode: number, path: string, secret: string): string | undefined {
  if (!CHECKS_FILE_MODES || (mode & 0o077) === 0) return undefined;
  return `holds ${secret} but is accessible by group or others (mode ${modeText(mode)}); run: chmod 600 ${path}`;
}

/** Why a directory holding `what` lets group or others replace files in it, or undefined if it does not. */
export function privateDirectoryProblem(mode: number, path: string, what: string): string | undefined {
  if (!CHECKS_FILE_MODES || (mode & 0o022) === 0) return undefined;
  return `is writable by group or others (mode ${modeText(mode)}), so they could replace ${what}; run: chmod go-w ${path}`;
}
