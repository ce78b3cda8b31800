import type { TaskStatus } from "../../gql/graphql";

export const STATUSES: readonly { value: TaskStatus; label: string }[] = [
  { value: "TODO", label: "To do" },
  { value: "IN_PROGRESS", label: "In progress" },
  { value: "DONE", label: "Done" },
];

export function statusLabel(status: TaskStatus): string {
  return STATUSES.find((s) => s.value === status)?.label ?? status;
}
