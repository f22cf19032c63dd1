import tarStream from 'tar-stream';

/**
 * tar-stream's extractor with one fix we must have: PAX record values are decoded by tar-stream as
 * UTF-8, which destroys binary xattr values (a `security.capability` with cap_setuid holds byte
 * 0x80: `newuidmap` in any image with uidmap installed). tar-stream has no option for this, so this
 * instance's long-header decoder is wrapped: after tar-stream has decoded the records, the
 * `SCHILY.xattr.*` values are re-read from the raw bytes as latin1 (one char per byte, lossless)
 * and {@link rawXattrMarker} says so. If a tar-stream update renames the hook, extraction still
 * works and binary values are reported as unrepresentable (unpack.ts) instead of written wrong.
 */
export const rawXattrMarker = 'KILN.xattr.latin1';

/** The PAX record key of extended attribute NAME is this prefix + NAME (GNU tar, Go's archive/tar, BuildKit). */
export const schilyXattrPrefix = 'SCHILY.xattr.';

interface ExtractInternals {
  _header: { type?: string | null } | null;
  _pax: Record<string, string> | null;
  _decodeLongHeader(this: ExtractInternals, buf: Buffer): void;
}

/** `LEN KEY=VALUE\n` records (POSIX pax), values kept as latin1 for xattr keys only. */
export function rawXattrRecords(buf: Buffer): Record<string, string> {
  const result: Record<string, string> = {};
  let offset = 0;
  while (offset < buf.length) {
    const space = buf.indexOf(0x20, offset);
    if (space === -1) break;
    const length = Number.parseInt(buf.toString('ascii', offset, space), 10);
    if (!Number.isInteger(length) || length <= 0 || offset + length > buf.length) break;
    const record = buf.subarray(space + 1, offset + length - 1); // without the trailing newline
    const equals = record.indexOf(0x3d);
    if (equals !== -1) {
      const key = record.toString('utf8', 0, equals);
      if (key.startsWith(schilyXattrPrefix)) result[key] = record.toString('latin1', equals + 1);
    }
    offset += length;
  }
  return result;
}

export function createTarExtract(): tarStream.Extract {
  const extract = tarStream.extract();
  const internals = extract as unknown as Partial<ExtractInternals>;
  const decode = internals._decodeLongHeader;
  if (typeof decode !== 'function') return extract;
  internals._decodeLongHeader = function patched(this: ExtractInternals, buf: Buffer): void {
    decode.call(this, buf);
    if (this._header?.type !== 'pax-header' || this._pax === null) return;
    const raw = rawXattrRecords(buf);
    if (Object.keys(raw).length === 0) return;
    Object.assign(this._pax, raw, { [rawXattrMarker]: '1' });
  };
  return extract;
}
