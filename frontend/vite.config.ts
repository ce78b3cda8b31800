/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `npm run dev` proxies the API to the router, so the app and the API share an
// origin as they do when the router (or nginx) serves the built app.
const api = process.env.TASKGRAPH_API ?? "http://127.0.0.1:4000";

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      "/graphql": api,
      // Downloads only: `/files` itself is a page of the app.
      "^/files/.+": api,
    },
  },
  build: {
    // Every asset is a file of our origin (CSP `default-src 'self'`): none inlined as data: URLs.
    assetsInlineLimit: 0,
    sourcemap: false,
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test/setup.ts"],
    restoreMocks: true,
  },
});
