/**
 * The path of the first object key that occurs twice in one object of `text`, or undefined when
 * there is none. JSON.parse keeps the last of duplicate keys silently; a policy file must not mean
 * something other than what its reader sees, so duplicates are found here and refused.
 * `text` must already be valid JSON (JSON.parse accepted it): this is a scan, not a validator.
 */
export function duplicateKeyPath(text: string): Array<string | number> | undefined {
  let i = 0;
  const skipSpace = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const readString = (): string => {
    const start = i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  // Iterative, with an explicit stack, so that deep nesting cannot overflow the call stack.
  type Frame = { kind: 'object'; keys: Set<string>; key: string } | { kind: 'array'; index: number };
  const stack: Frame[] = [];
  const path = () => stack.map((f) => (f.kind === 'object' ? f.key : f.index));
  for (;;) {
    // Read one value at the cursor.
    skipSpace();
    const c = text[i];
    let opened = false;
    if (c === '{' || c === '[') {
      i++;
      skipSpace();
      const closing = c === '{' ? '}' : ']';
      if (text[i] === closing) i++;
      else {
        if (c === '{') {
          const key = readString();
          stack.push({ kind: 'object', keys: new Set([key]), key });
          skipSpace();
          i++; // ':'
        } else stack.push({ kind: 'array', index: 0 });
        opened = true;
      }
    } else if (c === '"') readString();
    else while (i < text.length && !',]} \t\n\r'.includes(text[i]!)) i++; // number, true, false, null
    if (opened) continue;
    // After a value: a comma continues the innermost container, a bracket closes it.
    for (;;) {
      const top = stack.at(-1);
      if (!top) return undefined;
      skipSpace();
      const sep = text[i++];
      if (sep === ',') {
        if (top.kind === 'array') top.index++;
        else {
          skipSpace();
          const key = readString();
          if (top.keys.has(key)) {
            top.key = key;
            return path();
          }
          top.keys.add(key);
          top.key = key;
          skipSpace();
          i++; // ':'
        }
        break;
      }
      stack.pop();
    }
  }
}
