import { defineConfig } from "vite";

// `npm run dev` serves the page on http://localhost:5173 and forwards the API and the
// socket to docqueue (scripts/dev.sh: http://127.0.0.1:5634, or DOCQUEUE_URL), so in
// development the page and the API share an origin and need no CORS configuration.
const docqueue = process.env.DOCQUEUE_URL ?? "http://127.0.0.1:5634";

export default defineConfig({
  server: {
    proxy: {
      "/api": docqueue,
      "/ws": { target: docqueue.replace(/^http/, "ws"), ws: true },
    },
  },
  build: { outDir: "dist", emptyOutDir: true },
});
