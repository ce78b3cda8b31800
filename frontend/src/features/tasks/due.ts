// Due dates: how urgent a task is, and the <input type="datetime-local"> round trip.
import type { TaskStatus } from "../../gql/graphql";

export type Urgency = "overdue" | "due-soon" | null;

export const DUE_SOON_MS = 48 * 60 * 60 * 1000;

export function urgency(dueAt: string | null | undefined, status: TaskStatus, now: number = Date.now()): Urgency {
  if (!dueAt || status === "DONE") return null;
  const due = Date.parse(dueAt);
  if (due < now) return "overdue";
  if (due - now <= DUE_SOON_MS) return "due-soon";
  return null;
}

/** An ISO instant as the local wall time a datetime-local input shows. */
export function toLocalInput(iso: string | null | undefined): string {
  if (!iso) return "";
  const date = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A datetime-local value (local wall time) as an ISO instant; empty is none. */
export function fromLocalInput(value: string): string | null {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

export function formatDue(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
