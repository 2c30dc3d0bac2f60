/*
 * What every scheme shares: header lookup over the raw header list, HMAC over byte
 * parts (the body is never decoded to a string), constant-time comparison, and the
 * timestamp tolerance check. Header values arrive from node:http as Latin-1, one
 * character per byte, so Buffer.from(value, "latin1") gives back the bytes sent.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
export interface VerifyInput {
  rawHeaders: string[];
  body: Uint8Array;
  /** When the request was received, ms since the epoch. */
  receivedAt: number;
}

/** A compiled scheme: returns why the request verifies, or throws a VerifyFailure saying why not. */
export type SchemeCheck = (input: VerifyInput) => string;

/** Thrown inside a scheme to fail with a reason; caught by the dispatcher. */
export class VerifyFailure extends Error {}

export function failWith(reason: string): never {
  throw new VerifyFailure(reason);
}

/** The one value of a header (name in lower case); fails when it is missing or repeated. */
export function requireHeader(rawHeaders: string[], name: string): string {
  let found: string | undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length === name.length && rawHeaders[i]!.toLowerCase() === name) {
      if (found !== undefined) failWith(`more than one ${name} header`);
      found = rawHeaders[i + 1]!;
    }
  }
  if (found === undefined) failWith(`missing ${name} header`);
  return found;
}

export function latin1(text: string): Buffer {
  return Buffer.from(text, "latin1");
}

export function hmac(algorithm: string, key: Uint8Array, parts: Uint8Array[]): Buffer {
  const mac = createHmac(algorithm, key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

const HEX = /^(?:[0-9a-fA-F]{2})+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The signature's bytes, or undefined when the text is not well-formed hex or base64. */
export function decodeSignature(text: string, encoding: "hex" | "base64"): Buffer | undefined {
  if (encoding === "hex") return HEX.test(text) ? Buffer.from(text, "hex") : undefined;
  return BASE64.test(text) ? Buffer.from(text, "base64") : undefined;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The index of the first key whose digest matches any presented signature, or -1.
 * Every key is tried against every signature so the time taken does not depend on which matched.
 */
export function matchingKey(digests: Buffer[], presented: Buffer[]): number {
  let match = -1;
  digests.forEach((digest, index) => {
    for (const signature of presented) if (sameBytes(digest, signature) && match === -1) match = index;
  });
  return match;
}

/** A Unix timestamp in whole seconds, as senders put it in a header. */
export function parseTimestamp(text: string, header: string): number {
  if (!/^\d{1,12}$/.test(text)) failWith(`${header} is not a Unix timestamp in seconds`);
  return Number(text);
}

/** Fails when the signed timestamp is further than the tolerance from the time of receipt. */
export function checkTolerance(timestampSeconds: number, receivedAt: number, toleranceSeconds: number, matched: string): void {
  const age = Math.round(receivedAt / 1000 - timestampSeconds);
  if (age > toleranceSeconds) failWith(`${matched}, but the timestamp is ${age} s old (tolerance ${toleranceSeconds} s)`);
  if (-age > toleranceSeconds) failWith(`${matched}, but the timestamp is ${-age} s in the future (tolerance ${toleranceSeconds} s)`);
}

export function matchedReason(index: number, count: number): string {
  return `signature matches secret ${index + 1} of ${count}`;
}

/** Fails unless a key matched; returns the verdict's reason. */
export function requireMatch(index: number, count: number): string {
  if (index === -1) failWith(count === 1 ? "signature does not match the secret" : `signature matches none of the ${count} secrets`);
  return matchedReason(index, count);
}
