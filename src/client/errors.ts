/* Errors the client library throws: an HTTP refusal, or events lost to retention. */
export class TailhookHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "TailhookHttpError";
  }
}

export class TailhookGoneError extends TailhookHttpError {
  constructor(
    readonly requestedOffset: string,
    readonly earliestOffset: string | undefined,
    /** Where the stream's key frame is read (`…?offset=snapshot`), when the server said one is available. */
    readonly snapshot?: string,
  ) {
    super(410, "gone", `events after offset ${requestedOffset} are no longer retained`);
    this.name = "TailhookGoneError";
  }
}

/** The server answered something this client cannot make sense of (not a JSON stream, a snapshot without its frame). */
export class TailhookProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TailhookProtocolError";
  }
}

export async function errorFromResponse(response: Response): Promise<TailhookHttpError> {
  let code = "http_error";
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
  } catch {
    // Not our JSON error shape: keep the status line.
  }
  return new TailhookHttpError(response.status, code, message);
}

/** The `Link: <…>; rel="snapshot"` target of a 410, if any (RFC 8288, one or more links). */
function snapshotLink(header: string | null): string | undefined {
  if (header === null) return undefined;
  for (const link of header.split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>(.*)$/.exec(link);
    if (match && /;\s*rel\s*=\s*"?([^";]*\s)?snapshot(\s[^";]*)?"?\s*(;|$)/i.test(match[2]!)) return match[1];
  }
  return undefined;
}

/** A 410 reply as the error it means: what was asked for, the earliest offset, and a key frame if one is offered. */
export async function goneFromResponse(response: Response, requestedOffset: string): Promise<TailhookGoneError> {
  const body = (await response.json().catch(() => ({}))) as { error?: { earliestOffset?: string; snapshot?: string } };
  const snapshot = body.error?.snapshot ?? snapshotLink(response.headers.get("link"));
  return new TailhookGoneError(requestedOffset, body.error?.earliestOffset, snapshot);
}
