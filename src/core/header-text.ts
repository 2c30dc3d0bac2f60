/*
 * What node:http will put in a header, as pure rules (core stays free of I/O imports).
 * They mirror Node's validateHeaderName (an RFC 9110 token) and validateHeaderValue
 * (tab, visible ASCII, space and obs-text 0x80-0xff, which Node writes as Latin-1);
 * test/inbox-replies.test.ts compares them with node:http character by character.
 * Anything else makes Node throw ERR_INVALID_CHAR when the reply is written.
 */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

export function isSendableHeaderName(name: string): boolean {
  return HEADER_NAME.test(name);
}

export function isSendableHeaderValue(value: string): boolean {
  return HEADER_VALUE.test(value);
}
