/*
 * Request validation at the edge: Fastify's ajv with the route schemas, tuned so that a
 * schema refuses rather than repairs (no type coercion, no silently dropped unknown
 * keys), and its errors told in our words and our one error shape (a 400 bad_request
 * through the error funnel, http/errors.ts).
 */
import type { FastifyInstance, FastifyServerOptions } from "fastify";
import { TailhookError } from "../core/errors.js";

/** What Fastify's ajv does differently from its defaults, and why. */
export const ajvOptions: NonNullable<FastifyServerOptions["ajv"]> = {
  customOptions: {
    // "5" is not 5: a client sending the wrong type hears so instead of being guessed at.
    coerceTypes: false,
    // Unknown keys are refused (additionalProperties: false), never quietly removed.
    removeAdditional: false,
    // Defaults are the domain parsers' business (core/), not the validator's.
    useDefaults: false,
    // The failing schema comes with each error, so a description can name what was expected.
    verbose: true,
  },
};

interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
  parentSchema?: { description?: string };
}

const TYPE_WORDS: Record<string, string> = {
  object: "a JSON object",
  array: "an array",
  string: "a string",
  integer: "an integer",
  number: "a number",
  boolean: "a boolean",
};

/** "settings.verify.secrets[0]" from "/settings/verify/secrets/0". */
function fieldName(instancePath: string): string {
  return instancePath
    .split("/")
    .slice(1)
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path === "" ? part : `${path}.${part}`), "");
}

function subject(dataVar: string, field: string): string {
  if (field !== "") return dataVar === "body" ? field : `${dataVar === "params" ? "path parameter" : "query parameter"} ${field}`;
  return dataVar === "body" ? "the body" : `the ${dataVar}`;
}

function describe(error: SchemaError, dataVar: string): string {
  const field = fieldName(error.instancePath);
  const what = subject(dataVar, field);
  const { params } = error;
  const expected = error.parentSchema?.description;
  switch (error.keyword) {
    case "additionalProperties":
      return `unknown field ${field === "" ? "" : `${field}.`}${String(params.additionalProperty)}`;
    case "required":
      return `${field === "" ? "" : `${field}.`}${String(params.missingProperty)} is required`;
    case "type":
      // A scalar's description says its whole rule ("an integer from 1 to 600"); an object's would not read as one.
      if (expected && params.type !== "object" && params.type !== "array") return `${what} must be ${expected}`;
      return `${what} must be ${TYPE_WORDS[String(params.type)] ?? String(params.type)}`;
    case "enum":
      return `${what} must be one of ${(params.allowedValues as unknown[]).join(", ")}`;
    case "minimum":
    case "maximum":
    case "minLength":
    case "maxLength":
    case "minItems":
    case "maxItems":
    case "pattern":
    case "format":
      return expected ? `${what} must be ${expected}` : `${what} ${error.message ?? "is not valid"}`;
    default:
      return `${what} ${error.message ?? "is not valid"}`;
  }
}

/**
 * The most specific complaint: the deepest field, leaving out the "or null" branch and
 * the anyOf summary of a nullable field (they only repeat that something else failed).
 */
function mostSpecific(errors: SchemaError[]): SchemaError {
  const telling = errors.filter((error) => error.keyword !== "anyOf" && !(error.keyword === "type" && error.params.type === "null"));
  const candidates = telling.length > 0 ? telling : errors;
  return candidates.reduce((best, error) => (error.instancePath.length > best.instancePath.length ? error : best));
}

export function formatSchemaErrors(errors: SchemaError[], dataVar: string): Error {
  if (errors.length === 0) return new TailhookError("bad_request", `the ${dataVar} is not valid`);
  return new TailhookError("bad_request", describe(mostSpecific(errors), dataVar));
}

/** An empty body (or JSON null) reads as {}, as it always has, before the body schema sees it. */
export function emptyBodyAsObject(app: FastifyInstance): void {
  app.addHook("preValidation", async (request) => {
    if (request.body === undefined || request.body === null) {
      if (request.routeOptions.schema?.body) request.body = {};
    }
  });
}
