/*
 * Headers for browsers on every stream reply, errors included: no content sniffing,
 * cross-origin embedding allowed, and CORS — only when the request came from a page
 * (it sent Origin), since the list of exposed headers is long and nobody else reads it.
 */
import { EXPOSED_HEADERS } from "./headers.js";

export const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "cross-origin-resource-policy": "cross-origin",
};

const WITH_CORS = {
  ...SECURITY_HEADERS,
  "access-control-allow-origin": "*",
  "access-control-expose-headers": EXPOSED_HEADERS,
};

export function browserHeaders(fromPage: boolean): Record<string, string> {
  return fromPage ? WITH_CORS : SECURITY_HEADERS;
}
