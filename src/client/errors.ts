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
  ) {
    super(410, "gone", `events after offset ${requestedOffset} are no longer retained`);
    this.name = "TailhookGoneError";
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
