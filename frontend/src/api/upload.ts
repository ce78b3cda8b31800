// One file as a GraphQL multipart request over XHR, which (unlike fetch)
// reports upload progress. The router refuses multipart requests without a
// preflight-forcing header (its CSRF guard).
import { print } from "graphql";
import type { DocumentNode } from "graphql";
import { problemFrom, type ApiProblem } from "./graphqlErrors";

export interface UploadProgress {
  loaded: number;
  total: number;
}

export type UploadResult<T> = { ok: true; data: T } | { ok: false; problem: ApiProblem; status: number };

export interface UploadRequest {
  url: string;
  document: DocumentNode;
  /** The variable of type `Upload!` the file goes to. */
  variable: string;
  file: File;
  token: string | null;
  onProgress?: (progress: UploadProgress) => void;
  signal?: AbortSignal;
  /** Injected in tests. */
  createXhr?: () => XMLHttpRequest;
}

export function multipartBody(document: DocumentNode, variable: string, file: File): FormData {
  const body = new FormData();
  body.append("operations", JSON.stringify({ query: print(document), variables: { [variable]: null } }));
  body.append("map", JSON.stringify({ 0: [`variables.${variable}`] }));
  body.append("0", file, file.name);
  return body;
}

export function uploadFile<T>(request: UploadRequest): Promise<UploadResult<T>> {
  const xhr = request.createXhr?.() ?? new XMLHttpRequest();
  return new Promise((resolve) => {
    xhr.open("POST", request.url);
    xhr.setRequestHeader("apollo-require-preflight", "true");
    xhr.setRequestHeader("accept", "application/json");
    if (request.token) xhr.setRequestHeader("authorization", `Bearer ${request.token}`);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) request.onProgress?.({ loaded: event.loaded, total: event.total });
    };
    xhr.onload = () => resolve(parseAnswer<T>(xhr.status, xhr.responseText));
    xhr.onerror = () =>
      resolve({ ok: false, status: 0, problem: { code: "NETWORK", message: "The upload was interrupted. Try again." } });
    xhr.onabort = () => resolve({ ok: false, status: 0, problem: { code: "ABORTED", message: "Upload cancelled." } });
    request.signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(multipartBody(request.document, request.variable, request.file));
  });
}

export function parseAnswer<T>(status: number, text: string): UploadResult<T> {
  let body: { data?: T | null; errors?: { message: string; extensions?: Record<string, unknown> }[] };
  try {
    body = JSON.parse(text);
  } catch {
    const problem = status === 413
      ? { code: "PAYLOAD_TOO_LARGE", message: "The file is larger than the server accepts." }
      : { code: "INTERNAL", message: `The server answered HTTP ${status}.` };
    return { ok: false, status, problem };
  }
  const first = body.errors?.[0];
  if (first || !body.data) {
    const problem = first ? problemFrom(first) : { code: "INTERNAL", message: "The server sent no data." };
    return { ok: false, status, problem };
  }
  return { ok: true, data: body.data };
}

/** Whether an upload's refusal was about the token (so one renewal and retry may help). */
export function refusedToken(result: UploadResult<unknown>): boolean {
  return !result.ok && (result.status === 401 || result.problem.code === "UNAUTHENTICATED");
}
