// GraphiQL against the router that serves this page (same origin, same path).
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { setNonce } from "get-nonce";
import { GraphiQL } from "graphiql";
import { createElement } from "react";
import { createRoot } from "react-dom/client";
import "graphiql/style.css";
import "./page.css";

// The page's CSP allows inline <style> only with this response's nonce; GraphiQL's
// dialogs inject one (react-remove-scroll, through get-nonce).
const nonce = document.querySelector('meta[name="csp-nonce"]')?.getAttribute("content");
if (nonce) setNonce(nonce);

const fetcher = createGraphiQLFetcher({ url: window.location.pathname });
const root = document.getElementById("graphiql");
root.textContent = "";
createRoot(root).render(createElement(GraphiQL, { fetcher, shouldPersistHeaders: false }));
