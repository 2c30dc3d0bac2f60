/*
 * Webhook targets are chosen by API callers, so a careless server becomes a proxy into
 * its own network (SSRF). We accept https to public hosts, plus the protocol's
 * development exception when the server allows it (--open or --allow-local-webhooks):
 * http or https to localhost and 127.0.0.x. The host name is
 * checked here; what a name resolves to is checked again at delivery (delivery.ts),
 * because DNS can point a public-looking name at 10.0.0.1.
 */
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";

export type WebhookUrlCheck = { ok: true; url: URL; loopbackAllowed: boolean } | { ok: false; message: string };

export interface WebhookUrlPolicy {
  /** The development exception: only under `serve --open` or `--allow-local-webhooks`. */
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
    return {
      ok: false,
      message: "webhook URLs to localhost are disabled on this server (start it with --allow-local-webhooks or --open to allow them)",
    };
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
  return hostname
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1")
    .replace(/\.$/, "");
}

/**
 * Whether an IP address is globally routable. ipaddr.js knows the special-purpose
 * ranges (private, loopback, link-local, documentation, benchmarking, reserved, ...);
 * only its "unicast" is public. process() turns IPv4-mapped IPv6 into the IPv4 it
 * carries; every other range that embeds an IPv4 (translated, NAT64, 6to4, Teredo) has
 * a name of its own and is refused whole, since the IPv4 inside may be private. IPv6
 * must also lie in 2000::/3, the only block IANA hands out for global unicast: that
 * covers the deprecated IPv4-compatible ::a.b.c.d and whatever ipaddr.js does not name.
 */
export function isPublicAddress(address: string): boolean {
  if (isIP(address) === 0) return false;
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.process(address);
  } catch {
    return false;
  }
  if (parsed.range() !== "unicast") return false;
  return parsed instanceof ipaddr.IPv4 || parsed.match(GLOBAL_UNICAST_V6);
}

const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR("2000::/3");

/** Loopback in any spelling (127/8, ::1, ::ffff:127.x): the development exception's addresses. */
export function isLoopbackAddress(address: string): boolean {
  if (isIP(address) === 0) return false;
  try {
    return ipaddr.process(address).range() === "loopback";
  } catch {
    return false;
  }
}
