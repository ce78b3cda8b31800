import { defineConfig } from "vite";

// Two files of fixed names (the router embeds them; their page is the router's),
// nothing inlined as a data: URL (the page's CSP allows only its own origin).
export default defineConfig({
  publicDir: false,
  build: {
    outDir: process.env.GRAPHIQL_OUT ?? "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    modulePreload: false,
    sourcemap: false,
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      input: "src/main.js",
      output: {
        format: "es",
        entryFileNames: "graphiql.js",
        chunkFileNames: "graphiql-[name].js",
        assetFileNames: "graphiql[extname]",
        codeSplitting: false,
      },
    },
  },
});
