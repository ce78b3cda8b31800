import { describe, expect, it } from "vitest";
import { formatBytes, refusalBeforeUpload } from "./limits";

describe("refusalBeforeUpload", () => {
  it("refuses a file over the size limit, saying the limit", () => {
    expect(refusalBeforeUpload({ name: "big.pdf", size: 12 * 1024 * 1024, type: "application/pdf" })).toBe(
      "big.pdf is 12 MB, over the 10 MB limit for one file.",
    );
  });

  it("refuses a type the server does not accept, and lets an unknown type through to the server's sniffing", () => {
    expect(refusalBeforeUpload({ name: "a.exe", size: 10, type: "application/x-msdownload" })).toMatch(/not accepted/);
    expect(refusalBeforeUpload({ name: "notes", size: 10, type: "" })).toBeNull();
    expect(refusalBeforeUpload({ name: "p.png", size: 10, type: "image/png" })).toBeNull();
  });

  it("formats sizes", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KB");
    expect(formatBytes(384 * 1024)).toBe("384 KB");
  });
});
