// Two tabs of one browser share the session: one refresh for both, one sign-out for both.
import { expect, test } from "@playwright/test";
import { expectAccessible } from "./support";

test("tabs resume the session together and sign out together", async ({ context }) => {
  const tabA = await context.newPage();
  await tabA.goto("/");
  await tabA.getByRole("tab", { name: "Create account" }).click();
  await tabA.getByLabel("Email").fill(`tabs-${Date.now()}@example.com`);
  await tabA.getByLabel("Password").fill("analytical1");
  await tabA.getByRole("button", { name: "Create account" }).click();
  await expect(tabA.getByRole("heading", { level: 1, name: "Tasks" })).toBeVisible();

  // Both tabs load at once, each needing an access token: no refresh token is presented twice
  // (a spent one presented again, after the API's grace, would revoke the whole family).
  const tabB = await context.newPage();
  const presented: string[] = [];
  for (const tab of [tabA, tabB]) {
    tab.on("request", (r) => {
      const body = r.postData();
      if (r.url().endsWith("/graphql") && body?.includes("refreshToken(")) presented.push(JSON.parse(body).variables.token);
    });
  }
  await Promise.all([tabA.reload(), tabB.goto("/account")]);
  await expect(tabA.getByRole("heading", { level: 1, name: "Tasks" })).toBeVisible();
  await expect(tabB.getByRole("heading", { level: 1, name: "Account" })).toBeVisible();
  expect(presented.length).toBeGreaterThan(0);
  expect(new Set(presented).size).toBe(presented.length);
  await expectAccessible(tabB, "account page in a second tab");

  // Log out in one tab: the other is signed out at once, without a request of its own.
  await tabB.getByRole("button", { name: "Log out", exact: true }).click();
  await expect(tabB.getByRole("tab", { name: "Sign in" })).toBeVisible();
  await expect(tabA.getByRole("tab", { name: "Sign in" })).toBeVisible();
  expect(await tabA.evaluate(() => window.localStorage.length)).toBe(0);
});
