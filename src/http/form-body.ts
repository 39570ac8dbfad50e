import type { IncomingMessage } from 'node:http';

/** The largest form body read (RFC 6749/7662/7009 requests are a few hundred bytes). */
export const MAX_FORM_BODY_BYTES = 16 * 1024;

/** Why a body was refused: the HTTP status and a message naming the problem. */
export class FormBodyError extends Error {
  override readonly name = 'FormBodyError';
  constructor(
    readonly status: 400 | 413 | 415,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Read an `application/x-www-form-urlencoded` body of at most `limitBytes`. A declared
 * Content-Length over the limit is refused before a byte is read; a chunked body is counted as it
 * arrives and reading stops at the limit (the caller should close the connection then, since the
 * rest of the body is never read). Only UTF-8 (or no charset) is accepted.
 */
export async function readFormBody(req: IncomingMessage, limitBytes: number = MAX_FORM_BODY_BYTES): Promise<FormParams> {
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  const [mediaType, ...params] = type.split(';').map((s) => s.trim());
  if (mediaType !== 'application/x-www-form-urlencoded') {
    throw new FormBodyError(415, `the body must be application/x-www-form-urlencoded (got ${mediaType ? `"${mediaType.slice(0, 80)}"` : 'no Content-Type'})`);
  }
  const charset = params.find((p) => p.startsWith('charset='))?.slice('charset='.length).replace(/^"|"$/g, '');
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new FormBodyError(415, `only charset=UTF-8 is accepted (got "${charset.slice(0, 40)}")`);
  }
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limitBytes) {
    throw new FormBodyError(413, `the body is ${declared} bytes; at most ${limitBytes} are accepted`);
  }
  const text = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        cleanup();
        req.pause();
        reject(new FormBodyError(413, `the body is more than ${limitBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new FormBodyError(400, `the body could not be read: ${err.message}`));
    };
    // A client gone before the end of its body: settle rather than wait forever (after 'end' a
    // settled promise ignores this).
    const onClose = () => {
      cleanup();
      reject(new FormBodyError(400, 'the connection closed before the body ended'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
  return new FormParams(new URLSearchParams(text));
}

/** Form parameters. `get` refuses a repeated parameter (RFC 6749 §3.2); `getAll` is for those that may repeat. */
export class FormParams {
  constructor(private readonly params: URLSearchParams) {}

  /** The value, or undefined when absent. A parameter given twice is a 400 naming it. */
  get(name: string): string | undefined {
    const all = this.params.getAll(name);
    if (all.length > 1) throw new FormBodyError(400, `parameter ${name} is given more than once`);
    return all[0];
  }

  /** Every value of a parameter that may repeat (RFC 8707 `resource`). */
  getAll(name: string): string[] {
    return this.params.getAll(name);
  }
}
