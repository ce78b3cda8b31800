// The whole user journey against the real backend, in the order a user takes it.
import { readFileSync } from "node:fs";
import { expect, test, type Page } from "@playwright/test";
import { expectAccessible, layoutShift, recordLayoutShifts, screenshot, sql, watchConsole } from "./support";

const email = `ada-${Date.now()}@example.com`;
const firstPassword = "analytical1";
const secondPassword = "difference2";

/** A datetime-local value `hours` from now, in the browser's (and this process's) time zone. */
function localInput(hours: number): string {
  const d = new Date(Date.now() + hours * 3600_000);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A text file the server sniffs as text/plain, `kib` KiB long. */
function textFile(name: string, kib: number) {
  const line = `${name}: taskgraph end-to-end upload, a line of plain text.\n`;
  const buffer = Buffer.from(line.repeat(Math.ceil((kib * 1024) / line.length)));
  return { name, mimeType: "text/plain", buffer };
}

async function signIn(page: Page, password: string) {
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await expect(page.getByRole("navigation", { name: "Main" })).toBeVisible();
}

async function goTo(page: Page, label: "Tasks" | "Files" | "Account") {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: label }).click();
  await expect(page.getByRole("heading", { level: 1, name: label })).toBeVisible();
}

test("register, tasks, files, password, account deletion", async ({ page, context, baseURL }) => {
  const problems = watchConsole(page);
  // Nothing from another origin, fonts included.
  const foreign: string[] = [];
  const origin = new URL(baseURL!).origin;
  page.on("request", (request) => {
    const url = request.url();
    if (!url.startsWith(origin) && !url.startsWith("data:") && !url.startsWith("blob:")) foreign.push(url);
  });
  await recordLayoutShifts(page);

  // Sign in / create account.
  await page.goto("/");
  await expect(page.getByRole("tab", { name: "Sign in" })).toHaveAttribute("aria-selected", "true");
  await expectAccessible(page, "sign-in page");
  await screenshot(page, "01-sign-in");
  await page.getByRole("tab", { name: "Create account" }).click();
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("short");
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByLabel("Password")).toHaveAttribute("aria-invalid", "true");
  await screenshot(page, "02-register-field-error");
  await page.getByLabel("Password").fill(firstPassword);
  const registered = page.waitForResponse((r) => r.url().endsWith("/graphql") && r.request().postData()?.includes("Register") === true);
  await page.getByRole("button", { name: "Create account" }).click();
  const userId: string = (await (await registered).json()).data.register.user.id;
  await expect(page.getByRole("heading", { level: 1, name: "Tasks" })).toBeVisible();
  await expect(page.getByText("No tasks yet")).toBeVisible();

  // No access token in storage: only the refresh token (opaque, not a JWT) is kept.
  const stored = await page.evaluate(() => Object.entries(window.localStorage));
  expect(stored.map(([key]) => key)).toEqual(["taskgraph.refreshToken"]);
  expect(stored.some(([, value]) => value.startsWith("eyJ"))).toBe(false);

  // Tasks: create three, with due dates that are soon, past and none.
  const newTask = page.getByRole("form", { name: "New task" });
  for (const [title, due, description] of [
    ["Write the report", localInput(20), "Quarterly numbers"],
    ["Pay the invoice", localInput(-30), ""],
    ["Read the paper", "", ""],
  ] as const) {
    await newTask.getByLabel("Title").fill(title);
    await newTask.getByLabel("Due").fill(due);
    await newTask.getByLabel("Description").fill(description);
    await newTask.getByRole("button", { name: "Add task" }).click();
    await expect(page.getByRole("listitem", { name: title })).toBeVisible();
  }
  await expect(page.getByTestId("count-all")).toHaveText("3");
  await expect(page.getByTestId("count-TODO")).toHaveText("3");
  await expect(page.getByRole("listitem", { name: "Write the report" }).getByText("Due soon")).toBeVisible();
  await expect(page.getByRole("listitem", { name: "Pay the invoice" }).getByText("Overdue")).toBeVisible();

  // Edit inline.
  await page.getByRole("button", { name: "Edit Read the paper" }).click();
  const editForm = page.getByRole("form", { name: "Edit Read the paper" });
  await editForm.getByLabel("Title").fill("Read the federation paper");
  await editForm.getByRole("button", { name: "Save" }).click();
  await expect(page.getByRole("listitem", { name: "Read the federation paper" })).toBeVisible();

  // Complete one.
  await page.getByLabel("Status of Write the report").selectOption("DONE");
  await expect(page.getByTestId("count-DONE")).toHaveText("1");
  await expect(page.getByTestId("count-TODO")).toHaveText("2");
  await expect(page.getByRole("listitem", { name: "Write the report" }).getByText("Due soon")).toHaveCount(0);

  // Delete, undo, delete for good.
  await page.getByRole("button", { name: "Delete Pay the invoice" }).click();
  await expect(page.getByRole("listitem", { name: "Pay the invoice" })).toHaveCount(0);
  await page.getByRole("button", { name: "Undo" }).click();
  await expect(page.getByRole("listitem", { name: "Pay the invoice" })).toBeVisible();
  await page.getByRole("button", { name: "Delete Pay the invoice" }).click();
  await expect(page.getByTestId("count-all")).toHaveText("2", { timeout: 15_000 });
  expect(sql(`SELECT count(*) FROM tasks.tasks WHERE user_id = '${userId}'`)).toBe("2");

  // Filter by status.
  await page.getByRole("button", { name: /Done/ }).first().click();
  await expect(page.getByRole("heading", { name: "Done tasks" })).toBeVisible();
  await expect(page.locator(".task")).toHaveCount(1);
  await page.getByRole("button", { name: /All/ }).first().click();
  await expect(page.locator(".task")).toHaveCount(2);
  await expectAccessible(page, "tasks page");
  await screenshot(page, "03-tasks");
  await page.setViewportSize({ width: 390, height: 844 });
  await screenshot(page, "04-tasks-narrow");
  await page.setViewportSize({ width: 1280, height: 860 });

  // Files: two at once, the upload throttled so the bars move.
  await goTo(page, "Files");
  await expect(page.getByText("No files yet.")).toBeVisible();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", {
    offline: false,
    latency: 20,
    downloadThroughput: -1,
    uploadThroughput: 192 * 1024,
  });
  const notes = textFile("notes.txt", 384);
  const draft = textFile("draft.txt", 256);
  await page.locator('input[type="file"]').setInputFiles([notes, draft]);
  // Mid-way: some bar is past 0 and short of 100.
  await page.waitForFunction(() =>
    Array.from(document.querySelectorAll("progress")).some((p) => p.value > 0 && p.value < 100),
  );
  await screenshot(page, "05-uploading");
  await expect(page.getByText("Uploaded")).toHaveCount(2, { timeout: 60_000 });
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await expect(page.getByRole("listitem", { name: "notes.txt" })).toBeVisible();
  await expect(page.getByRole("listitem", { name: "draft.txt" })).toBeVisible();

  // A deep link loads the app, which resumes the session from the refresh token, without layout shift.
  await page.goto("/files");
  await expect(page.getByRole("heading", { level: 1, name: "Files" })).toBeVisible();
  await expect(page.getByRole("listitem", { name: "notes.txt" })).toBeVisible();
  expect(await layoutShift(page)).toBeLessThan(0.1);

  // Rename, download (the same bytes), delete.
  await page.getByRole("button", { name: "Rename notes.txt" }).click();
  await page.getByRole("form", { name: "Rename notes.txt" }).getByLabel("File name").fill("meeting-notes.txt");
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByRole("listitem", { name: "meeting-notes.txt" })).toBeVisible();
  const downloading = page.waitForEvent("download");
  await page.getByRole("button", { name: "Download meeting-notes.txt" }).click();
  const download = await downloading;
  expect(download.suggestedFilename()).toBe("meeting-notes.txt");
  expect(readFileSync(await download.path()).equals(notes.buffer)).toBe(true);
  await page.getByRole("button", { name: "Delete draft.txt" }).click();
  await expect(page.getByRole("listitem", { name: "draft.txt" })).toHaveCount(0);
  await expect.poll(() => sql(`SELECT count(*) FROM files.files WHERE owner_id = '${userId}'`), { timeout: 15_000 }).toBe("1");
  await expectAccessible(page, "files page");
  await screenshot(page, "06-files");

  // Change the password: every session ends; sign in with the new one.
  await goTo(page, "Account");
  await expectAccessible(page, "account page");
  await screenshot(page, "07-account");
  await page.getByLabel("Current password").fill("not-the-password1");
  await page.getByLabel("New password").fill(secondPassword);
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByText("Current password is incorrect")).toBeVisible();
  await page.getByLabel("Current password").fill(firstPassword);
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByText("Password changed. Sign in with your new password.")).toBeVisible();
  expect(await page.evaluate(() => window.localStorage.length)).toBe(0);
  await signIn(page, secondPassword);

  // Delete the account (password confirmation in a dialog): signed out, and the data is gone.
  await goTo(page, "Account");
  await page.getByRole("button", { name: "Delete account…" }).click();
  const dialog = page.getByRole("dialog", { name: "Delete your account?" });
  await expect(dialog.getByLabel("Password")).toBeFocused();
  await expectAccessible(page, "delete-account dialog");
  await screenshot(page, "08-delete-dialog");
  await dialog.getByLabel("Password").fill(secondPassword);
  await dialog.getByRole("button", { name: "Delete account" }).click();
  await expect(page.getByText("Your account, tasks and files have been deleted.")).toBeVisible();
  await screenshot(page, "09-deleted");
  await expect.poll(() => sql(`SELECT count(*) FROM auth.users WHERE id = '${userId}'`)).toBe("0");
  await expect.poll(() => sql(`SELECT count(*) FROM tasks.tasks WHERE user_id = '${userId}'`), { timeout: 20_000 }).toBe("0");
  await expect.poll(() => sql(`SELECT count(*) FROM files.files WHERE owner_id = '${userId}'`), { timeout: 20_000 }).toBe("0");
  await page.reload();
  await expect(page.getByRole("tab", { name: "Sign in" })).toBeVisible();
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(secondPassword);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await expect(page.getByRole("alert")).toContainText("Invalid email or password");

  expect(problems).toEqual([]);
  expect(foreign).toEqual([]);
});
