/*
 * HTTP for the reserved subscription APIs under /v1/stream/__ds. Handlers only read the
 * request, call the service and write its answer: refusals are thrown as TailhookErrors,
 * which the server's error handler answers from the one error table (core/errors.ts).
 *
 * Control requests (create, read, delete, membership, claim) go through the server's
 * authorize(); callback, ack and release carry their own wake token instead, and the
 * JWK Set is public so that any receiver can verify signatures.
 *
 * Only the leading process runs the service (service-host.ts); the others answer 503
 * NOT_LEADER with Retry-After at once, never waiting for a term that may not come.
 * The JWK Set is served by every process once the key exists.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { TailhookError } from "../core/errors.js";
import type { Outcome, Refusal } from "./errors.js";
import type { SubscriptionServiceOptions } from "./service.js";
import { SubscriptionHost } from "./service-host.js";

export interface SubscriptionDeps extends SubscriptionServiceOptions {
  /** Throws when the caller may not manage subscriptions (allows everything in --open mode). */
  authorize: (request: FastifyRequest) => void;
}

const ROOT = "/v1/stream/__ds";
const SUBSCRIPTION = `${ROOT}/subscriptions/:id`;
const MAX_BODY_BYTES = 1024 * 1024;
const SUBSCRIPTION_ID = /^[^/\u0000-\u001f\u007f]{1,200}$/;

export function registerSubscriptionRoutes(app: FastifyInstance, deps: SubscriptionDeps): SubscriptionHost {
  const host = new SubscriptionHost(deps);

  // A plugin scope of our own, so that bodies reach us as bytes whatever parsers the
  // stream routes install, and a malformed body gets the protocol's INVALID_REQUEST.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: MAX_BODY_BYTES }, (_request, body, done) => done(null, body));

    scope.get(`${ROOT}/jwks.json`, async (_request, reply) => {
      const keys = await host.jwks();
      if (!keys) return notLeader();
      return reply
        .code(200)
        .header("content-type", "application/jwk-set+json")
        .header("cache-control", "public, max-age=300")
        .send(JSON.stringify(keys));
    });

    scope.put(SUBSCRIPTION, async (request, reply) => {
      deps.authorize(request);
      const service = host.serving();
      if (!service) return notLeader();
      const input = readInput(request);
      if (!input.ok) return refused(input);
      const outcome = await service.put(input.value.id, input.value.body);
      if (!outcome.ok) return refused(outcome);
      return reply.code(outcome.value.created ? 201 : 200).send(outcome.value.view);
    });

    scope.get(SUBSCRIPTION, async (request, reply) => {
      deps.authorize(request);
      const service = host.serving();
      if (!service) return notLeader();
      const id = readId(request);
      if (!id.ok) return refused(id);
      return send(reply, await service.get(id.value), 200);
    });

    scope.delete(SUBSCRIPTION, async (request, reply) => {
      deps.authorize(request);
      const service = host.serving();
      if (!service) return notLeader();
      const id = readId(request);
      if (!id.ok) return refused(id);
      await service.delete(id.value);
      return reply.code(204).send();
    });

    scope.post(`${SUBSCRIPTION}/streams`, async (request, reply) => {
      deps.authorize(request);
      const service = host.serving();
      if (!service) return notLeader();
      const input = readInput(request);
      if (!input.ok) return refused(input);
      return send(reply, await service.addStreams(input.value.id, input.value.body), 204);
    });

    scope.delete(`${SUBSCRIPTION}/streams/*`, async (request, reply) => {
      deps.authorize(request);
      const service = host.serving();
      if (!service) return notLeader();
      const id = readId(request);
      if (!id.ok) return refused(id);
      const path = encodedStreamPath(request.url);
      if (path === undefined) return refused(invalid("the stream path is not valid URL encoding"));
      return send(reply, await service.removeStream(id.value, path), 204);
    });

    scope.post(`${SUBSCRIPTION}/callback`, async (request, reply) => {
      const service = host.serving();
      if (!service) return notLeader();
      const input = readInput(request);
      if (!input.ok) return refused(input);
      return send(reply, await service.callback(input.value.id, bearerToken(request), input.value.body), 200);
    });

    scope.post(`${SUBSCRIPTION}/claim`, async (request, reply) => {
      deps.authorize(request);
      const service = host.serving();
      if (!service) return notLeader();
      const input = readInput(request);
      if (!input.ok) return refused(input);
      return send(reply, await service.claim(input.value.id, input.value.body), 200);
    });

    scope.post(`${SUBSCRIPTION}/ack`, async (request, reply) => {
      const service = host.serving();
      if (!service) return notLeader();
      const input = readInput(request);
      if (!input.ok) return refused(input);
      return send(reply, await service.ack(input.value.id, bearerToken(request), input.value.body), 200);
    });

    scope.post(`${SUBSCRIPTION}/release`, async (request, reply) => {
      const service = host.serving();
      if (!service) return notLeader();
      const input = readInput(request);
      if (!input.ok) return refused(input);
      return send(reply, await service.release(input.value.id, bearerToken(request), input.value.body), 204);
    });

    // The whole __ds space is ours: nothing under it may fall through to the stream routes.
    const unknown = async () => {
      throw new TailhookError("not_found", "no such Durable Streams control route");
    };
    scope.all(ROOT, unknown);
    scope.all(`${ROOT}/*`, unknown);
  });

  return host;
}

/** No term runs here: another process leads (or this one is between terms). */
function notLeader(): never {
  throw new TailhookError("NOT_LEADER", "subscriptions are served by another tailhook process; retry");
}

function send<T>(reply: FastifyReply, outcome: Outcome<T>, status: number): FastifyReply {
  if (!outcome.ok) return refused(outcome);
  return status === 204 ? reply.code(204).send() : reply.code(status).send(outcome.value);
}

/** Answered by the server's error handler, from the one error table. */
function refused(refusal: Refusal): never {
  throw new TailhookError(refusal.code, refusal.message, refusal.details);
}

function invalid(message: string): Refusal {
  return { ok: false, code: "INVALID_REQUEST", message };
}

function readId(request: FastifyRequest): Outcome<string> {
  const { id } = request.params as { id: string };
  return SUBSCRIPTION_ID.test(id) ? { ok: true, value: id } : invalid("not a subscription id");
}

/** The id and the JSON body (an empty body reads as {}). */
function readInput(request: FastifyRequest): Outcome<{ id: string; body: unknown }> {
  const id = readId(request);
  if (!id.ok) return id;
  const raw = request.body;
  if (raw === undefined || raw === null || (Buffer.isBuffer(raw) && raw.length === 0))
    return { ok: true, value: { id: id.value, body: {} } };
  try {
    const text = Buffer.isBuffer(raw) ? raw.toString("utf8") : typeof raw === "string" ? raw : JSON.stringify(raw);
    return { ok: true, value: { id: id.value, body: JSON.parse(text) as unknown } };
  } catch {
    return invalid("the body must be JSON");
  }
}

/**
 * The stream path after ".../streams/", decoded exactly once from the raw URL: it is
 * URL-encoded and may contain slashes either encoded (%2F) or plain.
 */
function encodedStreamPath(url: string): string | undefined {
  const path = url.split("?")[0]!;
  const marker = path.indexOf("/streams/", `${ROOT}/subscriptions/`.length);
  try {
    return decodeURIComponent(path.slice(marker + "/streams/".length));
  } catch {
    return undefined;
  }
}

function bearerToken(request: FastifyRequest): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? "");
  return match?.[1];
}
