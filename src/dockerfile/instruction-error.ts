/** A problem found while typing or expanding one instruction; the caller adds file and line. */
export class InstructionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InstructionError';
  }
}
