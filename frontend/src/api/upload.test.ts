import { describe, expect, it } from "vitest";
import { UploadFileMutation } from "./documents";
import { uploadFile, type UploadProgress } from "./upload";

/** Just enough of XMLHttpRequest to drive the helper: what it was sent, and the events a browser fires. */
class FakeXhr {
  method = "";
  url = "";
  headers: Record<string, string> = {};
  body: FormData | null = null;
  status = 0;
  responseText = "";
  upload: { onprogress: ((e: ProgressEvent) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(name: string, value: string) {
    this.headers[name] = value;
  }
  send(body: FormData) {
    this.body = body;
  }
  abort() {
    this.onabort?.();
  }
  progress(loaded: number, total: number) {
    this.upload.onprogress?.(new ProgressEvent("progress", { lengthComputable: true, loaded, total }));
  }
  answer(status: number, body: unknown) {
    this.status = status;
    this.responseText = JSON.stringify(body);
    this.onload?.();
  }
}

function start(file = new File(["hello"], "notes.txt", { type: "text/plain" })) {
  const xhr = new FakeXhr();
  const progress: UploadProgress[] = [];
  const result = uploadFile<{ uploadFile: { id: string } }>({
    url: "/graphql",
    document: UploadFileMutation,
    variable: "file",
    file,
    token: "access-0",
    onProgress: (p) => progress.push(p),
    createXhr: () => xhr as unknown as XMLHttpRequest,
  });
  return { xhr, progress, result, file };
}

describe("uploadFile", () => {
  it("sends a GraphQL multipart request with the preflight header and the token", () => {
    const { xhr, file } = start();
    expect(xhr.method).toBe("POST");
    expect(xhr.url).toBe("/graphql");
    expect(xhr.headers["apollo-require-preflight"]).toBe("true");
    expect(xhr.headers.authorization).toBe("Bearer access-0");
    const operations = JSON.parse(xhr.body!.get("operations") as string);
    expect(operations.variables).toEqual({ file: null });
    expect(operations.query).toContain("uploadFile(file: $file)");
    expect(JSON.parse(xhr.body!.get("map") as string)).toEqual({ 0: ["variables.file"] });
    expect((xhr.body!.get("0") as File).name).toBe(file.name);
    // The spec's order: operations, then map, then the files.
    expect([...xhr.body!.keys()]).toEqual(["operations", "map", "0"]);
  });

  it("reports progress events as they come, then the data", async () => {
    const { xhr, progress, result } = start();
    xhr.progress(100, 400);
    xhr.progress(400, 400);
    xhr.answer(200, { data: { uploadFile: { id: "f1" } } });
    expect(progress).toEqual([
      { loaded: 100, total: 400 },
      { loaded: 400, total: 400 },
    ]);
    expect(await result).toEqual({ ok: true, data: { uploadFile: { id: "f1" } } });
  });

  it("turns a refusal into a problem with its code", async () => {
    const { xhr, result } = start();
    xhr.answer(413, { errors: [{ message: "The file is over 10485760 bytes", extensions: { code: "PAYLOAD_TOO_LARGE" } }] });
    expect(await result).toMatchObject({ ok: false, status: 413, problem: { code: "PAYLOAD_TOO_LARGE" } });
  });

  it("reports a dropped connection", async () => {
    const { xhr, result } = start();
    xhr.onerror?.();
    expect(await result).toMatchObject({ ok: false, problem: { code: "NETWORK" } });
  });
});
