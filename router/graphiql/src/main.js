// GraphiQL against the router that serves this page (same origin, same path).
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { GraphiQL } from "graphiql";
import { createElement } from "react";
import { createRoot } from "react-dom/client";
import "graphiql/style.css";
import "./page.css";

const fetcher = createGraphiQLFetcher({ url: window.location.pathname });
const root = document.getElementById("graphiql");
root.textContent = "";
createRoot(root).render(createElement(GraphiQL, { fetcher, shouldPersistHeaders: false }));
