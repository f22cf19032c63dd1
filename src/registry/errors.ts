/**
 * Errors of the registry client. Every message names the registry, the repository and the
 * operation, and carries the registry's own words from its JSON `errors[]` body. Nothing here ever
 * sees a credential: callers pass statuses and bodies, never request headers.
 */

/** One entry of the distribution API's error body: `{"errors":[{"code","message","detail"}]}`. */
export interface RegistryErrorDetail {
  code: string;
  message: string;
}

export interface RegistryErrorContext {
  /** Registry host as written in references (`docker.io`, `127.0.0.1:5000`). */
  registry: string;
  /** Repository name, or '' for registry-wide operations such as ping. */
  repository: string;
  /** What we were doing, in words a user reads: `pull manifest latest`, `upload blob sha256:…`. */
  operation: string;
}

export class RegistryError extends Error {
  readonly registry: string;
  readonly repository: string;
  readonly operation: string;
  /** HTTP status of the last response, when there was one (absent for connection failures). */
  readonly status: number | undefined;
  /** The registry's own error entries, parsed from its JSON body. */
  readonly details: readonly RegistryErrorDetail[];

  constructor(
    context: RegistryErrorContext,
    problem: { status?: number; details?: readonly RegistryErrorDetail[]; reason?: string },
    options?: { cause?: unknown },
  ) {
    super(formatRegistryErrorMessage(context, problem), options);
    this.name = 'RegistryError';
    this.registry = context.registry;
    this.repository = context.repository;
    this.operation = context.operation;
    this.status = problem.status;
    this.details = problem.details ?? [];
  }

  /** True when the registry said the thing does not exist (404, or a *_UNKNOWN code). */
  get isNotFound(): boolean {
    return this.status === 404 || this.details.some((d) => d.code.endsWith('_UNKNOWN'));
  }
}

export function formatRegistryErrorMessage(
  context: RegistryErrorContext,
  problem: { status?: number; details?: readonly RegistryErrorDetail[]; reason?: string },
): string {
  const where = context.repository ? `${context.registry}/${context.repository}` : context.registry;
  const parts = [`${context.operation} at ${where} failed`];
  if (problem.status !== undefined) parts.push(`HTTP ${problem.status}${statusText(problem.status)}`);
  const said = (problem.details ?? []).map((d) => (d.message ? `${d.code}: ${d.message}` : d.code));
  if (said.length > 0) parts.push(`registry says ${said.join('; ')}`);
  if (problem.reason) parts.push(problem.reason);
  return parts.join(': ');
}

const statusTexts: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Payload Too Large',
  416: 'Range Not Satisfiable',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

function statusText(status: number): string {
  const text = statusTexts[status];
  return text ? ` ${text}` : '';
}

/** At most this much of a non-JSON body is quoted in an error (an HTML error page is noise). */
const maxQuotedBody = 200;

/**
 * Reads the distribution API's JSON error body. A body that is not the documented shape is quoted
 * (shortened) as a single detail with code `UNKNOWN`, so the user still sees what came back.
 */
export function parseRegistryErrorBody(text: string): RegistryErrorDetail[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  try {
    const parsed: unknown = JSON.parse(trimmed);
    const entries = extractErrorEntries(parsed);
    if (entries) return entries;
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    // Not JSON: fall through and quote it.
  }
  const quoted = trimmed.length > maxQuotedBody ? `${trimmed.slice(0, maxQuotedBody)}…` : trimmed;
  return [{ code: 'UNKNOWN', message: quoted }];
}

function extractErrorEntries(parsed: unknown): RegistryErrorDetail[] | undefined {
  if (parsed === null || typeof parsed !== 'object') return undefined;
  const errors = (parsed as { errors?: unknown }).errors;
  if (Array.isArray(errors)) {
    return errors.map((entry: unknown) => {
      const e = (entry ?? {}) as { code?: unknown; message?: unknown };
      return {
        code: typeof e.code === 'string' ? e.code : 'UNKNOWN',
        message: typeof e.message === 'string' ? e.message : '',
      };
    });
  }
  // Token servers answer OAuth2-style: {"error": "...", "error_description": "..."}.
  const oauth = parsed as { error?: unknown; error_description?: unknown; details?: unknown };
  if (typeof oauth.error === 'string') {
    return [
      {
        code: oauth.error,
        message: typeof oauth.error_description === 'string' ? oauth.error_description : '',
      },
    ];
  }
  return undefined;
}
