// Counts by status (the original's stats row), each a filter button.
import type { TaskStatus } from "../../gql/graphql";

export interface TaskCounts {
  all: number;
  TODO: number;
  IN_PROGRESS: number;
  DONE: number;
}

const TILES: { key: keyof TaskCounts; label: string }[] = [
  { key: "all", label: "All" },
  { key: "TODO", label: "To do" },
  { key: "IN_PROGRESS", label: "In progress" },
  { key: "DONE", label: "Done" },
];

interface Props {
  counts: TaskCounts | null;
  selected: TaskStatus | null;
  onSelect: (status: TaskStatus | null) => void;
}

export function TaskStats({ counts, selected, onSelect }: Props) {
  return (
    <ul className="stats" aria-label="Tasks by status">
      {TILES.map(({ key, label }) => {
        const status = key === "all" ? null : key;
        return (
          <li key={key}>
            <button
              type="button"
              className={selected === status ? "stat active" : "stat"}
              aria-pressed={selected === status}
              onClick={() => onSelect(status)}
            >
              <span className="stat-count" data-testid={`count-${key}`}>
                {counts ? counts[key] : "–"}
              </span>
              <span className="stat-label">{label}</span>
            </button>
          </li>
        );
      })}
    </ul>
  );
}
