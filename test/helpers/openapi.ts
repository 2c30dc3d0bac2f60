/*
 * The API's own OpenAPI document as a test oracle: fetch /openapi.json once, then check
 * that a reply's status is documented for its route and its JSON body matches the
 * documented schema (JSON Schema 2020-12, as OpenAPI 3.1 says, via ajv).
 */
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

interface Operation {
  responses: Record<string, { content?: Record<string, { schema: object }> }>;
}
export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
}

export interface ApiChecker {
  document: OpenApiDocument;
  /** Throws unless the reply's status is documented for method + URL and its JSON body fits; returns the reply. */
  check(method: string, response: Response): Promise<Response>;
}

export async function fetchOpenApi(baseUrl: string): Promise<OpenApiDocument> {
  const response = await fetch(`${baseUrl}/openapi.json`);
  if (response.status !== 200) throw new Error(`GET /openapi.json: ${response.status}`);
  return (await response.json()) as OpenApiDocument;
}

function routeOf(document: OpenApiDocument, path: string): string | undefined {
  return Object.keys(document.paths).find((template) => {
    const pattern = template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+");
    return new RegExp(`^${pattern}$`).test(path);
  });
}

export async function openApiChecker(baseUrl: string): Promise<ApiChecker> {
  const document = await fetchOpenApi(baseUrl);
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  addFormats.default(ajv);
  // Compiled up front, so that checking a reply adds no noticeable time between a test's requests.
  const compiled = new Map<object, ValidateFunction>();
  for (const operations of Object.values(document.paths)) {
    for (const operation of Object.values(operations)) {
      for (const reply of Object.values(operation.responses)) {
        const schema = reply.content?.["application/json"]?.schema;
        if (schema) compiled.set(schema, ajv.compile(schema));
      }
    }
  }
  return {
    document,
    async check(method, response) {
      const { pathname } = new URL(response.url);
      const route = routeOf(document, pathname);
      const operation = route === undefined ? undefined : document.paths[route]?.[method.toLowerCase()];
      if (!operation) throw new Error(`${method} ${pathname} is not in /openapi.json`);
      const status = String(response.status);
      const documented = operation.responses[status] ?? operation.responses[`${status[0]}XX`] ?? operation.responses.default;
      if (!documented) throw new Error(`${method} ${route} answered ${status}, which /openapi.json does not list`);
      const schema = documented.content?.["application/json"]?.schema;
      if (response.status === 204) {
        if (schema) throw new Error(`${method} ${route} 204 is documented with a body`);
        if ((await response.clone().text()) !== "") throw new Error(`${method} ${route} answered 204 with a body`);
        return response;
      }
      if (!schema) return response;
      const validate = compiled.get(schema)!;
      const body: unknown = await response.clone().json();
      if (!validate(body)) {
        throw new Error(
          `${method} ${route} ${status}: the body does not match /openapi.json: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body)}`,
        );
      }
      return response;
    },
  };
}
