/**
 * An error caused by the user's input (bad file, impossible request). The CLI prints its message
 * as one line on stderr and exits non-zero, without a stack trace.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** Throws a UserError unless `cond` holds. */
export function check(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new UserError(typeof message === 'string' ? message : message());
}
