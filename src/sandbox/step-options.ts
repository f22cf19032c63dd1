/**
 * RUN's `--network` and `--security` flags, decided before a step runs. Pure functions: the executor
 * passes the Dockerfile's values and the build's `--allow` entitlements.
 */

export type RunNetworkMode = 'default' | 'none' | 'host';
export type RunSecurityMode = 'sandbox' | 'insecure';

/** The entitlement `--allow` must name for `RUN --security=insecure` (BuildKit's name). */
export const insecureEntitlement = 'security.insecure';

export class RunSecurityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunSecurityError';
  }
}

/**
 * `none` gets a fresh network namespace with only loopback; `default` and `host` both share the
 * job's network: kiln has no bridge of its own to give a step, and BuildKit's default in a
 * rootless/unprivileged setup is the host network too.
 */
export function sandboxNetwork(mode: RunNetworkMode | undefined): 'host' | 'none' {
  return mode === 'none' ? 'none' : 'host';
}

/**
 * Whether a step runs with every capability: only with `--security=insecure`, and only when the build
 * was started with `--allow security.insecure`; otherwise the build fails naming the flag to add.
 */
export function runIsInsecure(mode: RunSecurityMode | undefined, allowed: readonly string[]): boolean {
  if (mode !== 'insecure') return false;
  if (allowed.some((entry) => entry.trim() === insecureEntitlement)) return true;
  throw new RunSecurityError(
    `RUN --security=insecure is not allowed: start the build with --allow ${insecureEntitlement} to grant this step every capability`,
  );
}
