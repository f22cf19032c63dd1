import { isValidReference } from '../image/reference.js';

/**
 * Registry-less image locations as skopeo writes them (containers/image transports): `oci:DIR[:tag]`
 * and `docker-archive:FILE[:name:tag|:@N]`. As there, the path ends at the first `:` after the
 * transport, so paths with a colon cannot be named.
 */

export type LayoutLocation =
  | { transport: 'oci'; directory: string; tag?: string }
  | { transport: 'docker-archive'; file: string; reference?: string; index?: number };

export class InvalidLocationError extends Error {
  constructor(
    readonly location: string,
    readonly reason: string,
  ) {
    super(`invalid image location "${location}": ${reason}`);
    this.name = 'InvalidLocationError';
  }
}

/** `[A-Za-z0-9._-]`, at most 128 characters, not starting with `.` or `-`: what skopeo's oci: transport accepts as a tag. */
const ociTagPattern = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** Returns undefined when `text` names no layout transport (e.g. a registry reference). */
export function parseLayoutLocation(text: string): LayoutLocation | undefined {
  if (text.startsWith('oci:')) {
    const rest = text.slice('oci:'.length);
    const colon = rest.indexOf(':');
    const directory = colon >= 0 ? rest.slice(0, colon) : rest;
    const tag = colon >= 0 ? rest.slice(colon + 1) : undefined;
    if (directory === '') throw new InvalidLocationError(text, 'the directory is missing');
    if (tag !== undefined && !ociTagPattern.test(tag)) throw new InvalidLocationError(text, `"${tag}" is not a valid tag`);
    return { transport: 'oci', directory, ...(tag !== undefined ? { tag } : {}) };
  }
  if (text.startsWith('docker-archive:')) {
    const rest = text.slice('docker-archive:'.length);
    const colon = rest.indexOf(':');
    const file = colon >= 0 ? rest.slice(0, colon) : rest;
    const selector = colon >= 0 ? rest.slice(colon + 1) : undefined;
    if (file === '') throw new InvalidLocationError(text, 'the file is missing');
    if (selector === undefined || selector === '') return { transport: 'docker-archive', file };
    if (selector.startsWith('@')) {
      const index = Number(selector.slice(1));
      if (!/^@\d+$/.test(selector) || !Number.isSafeInteger(index)) throw new InvalidLocationError(text, `"${selector}" is not @N`);
      return { transport: 'docker-archive', file, index };
    }
    if (!isValidReference(selector)) throw new InvalidLocationError(text, `"${selector}" is not a valid image reference`);
    return { transport: 'docker-archive', file, reference: selector };
  }
  return undefined;
}
