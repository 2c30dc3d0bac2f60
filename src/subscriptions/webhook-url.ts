/*
 * Webhook targets are chosen by API callers, so a careless server becomes a proxy into
 * its own network (SSRF). We accept https to public hosts, plus the protocol's
 * development exception: http or https to localhost and 127.0.0.x. The host name is
 * checked here; what a name resolves to is checked again at delivery (delivery.ts),
 * because DNS can point a public-looking name at 10.0.0.1.
 */
import { isIP } from "node:net";

export type WebhookUrlCheck =
  | { ok: true; url: URL; loopbackAllowed: boolean }
  | { ok: false; message: string };

export interface WebhookUrlPolicy {
  /** The development exception; on by default, as the protocol allows. */
  allowLocalhost: boolean;
}

export function checkWebhookUrl(raw: string, policy: WebhookUrlPolicy): WebhookUrlCheck {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, message: "webhook.url must be an absolute URL" };
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return { ok: false, message: "webhook.url must use https" };
  }
  const host = bareHost(url.hostname);
  const devHost = isDevelopmentHost(host);
  if (devHost) {
    if (policy.allowLocalhost) return { ok: true, url, loopbackAllowed: true };
    return { ok: false, message: "webhook URLs to localhost are disabled on this server" };
  }
  if (url.protocol === "http:") {
    return { ok: false, message: "webhook.url must use https (http is only for localhost and 127.0.0.x)" };
  }
  if (isIP(host) !== 0) {
    if (isPublicAddress(host)) return { ok: true, url, loopbackAllowed: false };
    return { ok: false, message: "webhook.url must not target a private, loopback or link-local address" };
  }
  // Names that can only be local; anything else is checked again once resolved.
  if (host.endsWith(".localhost") || host.endsWith(".local") || host.endsWith(".internal") || !host.includes(".")) {
    return { ok: false, message: "webhook.url must name a public host" };
  }
  return { ok: true, url, loopbackAllowed: false };
}

/** "localhost" or 127.0.0.x, the only local targets the protocol allows (for development). */
export function isDevelopmentHost(host: string): boolean {
  return host === "localhost" || /^127\.0\.0\.\d{1,3}$/.test(host);
}

/** URL host names keep IPv6 brackets and may end in a root dot; addresses compare without either. */
function bareHost(hostname: string): string {
  return hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "");
}

/** Whether an IP address is globally routable (not private, loopback, link-local, reserved...). */
export function isPublicAddress(address: string): boolean {
  const version = isIP(address);
  if (version === 4) return isPublicIpv4(address);
  if (version === 6) return isPublicIpv6(address.toLowerCase());
  return false;
}

function isPublicIpv4(address: string): boolean {
  const [a = 0, b = 0] = address.split(".").map(Number);
  if (a === 0 || a === 10 || a === 127) return false; // "this network", RFC1918, loopback
  if (a === 100 && b >= 64 && b <= 127) return false; // carrier-grade NAT (RFC 6598)
  if (a === 169 && b === 254) return false; // link-local, cloud metadata services
  if (a === 172 && b >= 16 && b <= 31) return false; // RFC1918
  if (a === 192 && b === 168) return false; // RFC1918
  if (a === 192 && b === 0) return false; // IETF protocol assignments, documentation
  if (a === 198 && (b === 18 || b === 19)) return false; // benchmarking
  if (a >= 224) return false; // multicast, reserved, broadcast
  return true;
}

function isPublicIpv6(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (mapped) return isPublicIpv4(mapped[1]!);
  const words = expandIpv6(address);
  if (!words) return false;
  if (words.every((word) => word === 0)) return false; // unspecified
  if (words.slice(0, 7).every((word) => word === 0) && words[7] === 1) return false; // loopback
  if (words.slice(0, 5).every((word) => word === 0) && words[5] === 0xffff) return false; // mapped, other spelling
  if (words.slice(0, 6).every((word) => word === 0)) return false; // IPv4-compatible (::a.b.c.d), deprecated
  const first = words[0]!;
  if ((first & 0xfe00) === 0xfc00) return false; // unique local
  if ((first & 0xffc0) === 0xfe80) return false; // link-local
  if ((first & 0xff00) === 0xff00) return false; // multicast
  if (first === 0x2001 && words[1] === 0x0db8) return false; // documentation
  if (first === 0x0064 && words[1] === 0xff9b) return false; // NAT64 (also local-use 64:ff9b:1::/48) can reach IPv4 private space
  if ((first & 0xffc0) === 0xfec0) return false; // site-local, deprecated but still local
  if (first === 0x2001 && words[1] === 0x0000) return false; // Teredo embeds arbitrary IPv4
  if (first === 0x2002) return false; // 6to4 embeds arbitrary IPv4
  return true;
}

/** The eight 16-bit words of an IPv6 address (with an embedded IPv4 tail converted). */
function expandIpv6(address: string): number[] | undefined {
  let text = address.replace(/%.*$/, "");
  const ipv4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (ipv4Tail) {
    const [a = 0, b = 0, c = 0, d = 0] = ipv4Tail[1]!.split(".").map(Number);
    text = text.slice(0, -ipv4Tail[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const headWords = head === "" ? [] : head.split(":");
  const tailWords = tail === undefined || tail === "" ? [] : tail.split(":");
  const missing = 8 - headWords.length - tailWords.length;
  if (tail === undefined ? missing !== 0 : missing < 0) return undefined;
  const words = [...headWords, ...Array<string>(Math.max(0, missing)).fill("0"), ...tailWords].map((word) => parseInt(word, 16));
  return words.length === 8 && words.every((word) => Number.isInteger(word) && word >= 0 && word <= 0xffff) ? words : undefined;
}
