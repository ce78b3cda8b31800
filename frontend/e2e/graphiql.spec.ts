import { expect, test } from "@playwright/test";
import { screenshot, watchConsole } from "./support";

test("GraphiQL loads and runs a query with every other origin unreachable", async ({ page, baseURL }) => {
  const origin = new URL(baseURL!).origin;
  const blocked: string[] = [];
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith("data:")) return route.continue();
    blocked.push(url);
    return route.abort("internetdisconnected");
  });
  const problems = watchConsole(page);
  await page.addInitScript(() => window.localStorage.setItem("graphiql:query", "{ __typename }"));

  const response = await page.goto("/graphql", { waitUntil: "load" });
  const csp = response?.headers()["content-security-policy"] ?? "";
  expect(csp).toContain("script-src 'self'");
  expect(csp).not.toContain("unsafe-inline");

  await page.getByRole("button", { name: /execute query/i }).click();
  await expect(page.locator(".result-window")).toContainText('"__typename": "Query"');
  // The schema comes by introspection, and the dialogs open, still within the CSP.
  await page.getByRole("button", { name: /documentation explorer/i }).click();
  await expect(page.locator(".graphiql-doc-explorer")).toContainText("Query");
  await page.getByRole("button", { name: /settings dialog/i }).click();
  await expect(page.getByRole("dialog")).toBeVisible();
  await page.keyboard.press("Escape");
  await screenshot(page, "graphiql");
  expect(blocked).toEqual([]);
  expect(problems).toEqual([]);
});
