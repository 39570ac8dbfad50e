/** Placeholder until the sidecar lands (issue 4). */
export async function runSidecarCommand(_argv: string[], _env: NodeJS.ProcessEnv): Promise<void> {
  process.stderr.write('token-authority: the sidecar is not part of this build yet\n');
  process.exit(1);
}
