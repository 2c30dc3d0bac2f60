/*
 * Errors the CLI reports as one line on stderr, `tailhook: <message>`, with an exit
 * code that tells scripts what kind of failure it was (docs/cli.md):
 * 1 the command failed (the server refused, could not be reached, …),
 * 2 it was used wrongly (unknown option, missing or malformed argument),
 * 3 `tail`/`forward --on-gone stop` fell behind retention,
 * 124 `wait` timed out.
 */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_GONE = 3;
export const EXIT_TIMEOUT = 124;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = EXIT_FAILURE,
  ) {
    super(message);
  }
}

/** A malformed command line: exit 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
  }
}
