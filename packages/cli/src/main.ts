/** Entry point of the `vaporform` command; resolves to the exit code. */
export async function main(_argv: string[]): Promise<number> {
  process.stderr.write('vaporform: not implemented yet\n');
  return 1;
}
