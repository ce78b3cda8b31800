import { defineConfig } from "@playwright/test";

// Run through scripts/e2e, which starts the real one-process backend (its own
// database, exchange, queues and storage) serving dist/ and sets E2E_BASE_URL.
const baseURL = process.env.E2E_BASE_URL ?? "http://127.0.0.1:4180";

export default defineConfig({
  testDir: "e2e",
  outputDir: "test-results",
  timeout: 120_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  use: {
    baseURL,
    acceptDownloads: true,
    viewport: { width: 1280, height: 860 },
    trace: "retain-on-failure",
    launchOptions: {
      // Debian's Chromium: Playwright downloads no browser here.
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
});
