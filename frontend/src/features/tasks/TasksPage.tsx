import { useCallback, useEffect, useState } from "react";
import { useClient } from "urql";
import { DeleteTaskMutation, TaskCountsQuery, TasksQuery } from "../../api/documents";
import { describe, problems } from "../../api/graphqlErrors";
import { usePaged } from "../../app/usePaged";
import { useToasts } from "../../components/Toasts";
import type { OrderDirection, TaskFieldsFragment, TaskOrderField, TaskStatus } from "../../gql/graphql";
import { STATUSES } from "./status";
import { TaskCreateForm } from "./TaskCreateForm";
import { TaskItem } from "./TaskItem";
import { TaskStats, type TaskCounts } from "./TaskStats";
import { useDeleteWithUndo } from "../../app/useDeleteWithUndo";

const PAGE_SIZE = 20;

const ORDERS: { value: string; label: string; field: TaskOrderField; direction: OrderDirection }[] = [
  { value: "created-desc", label: "Newest first", field: "CREATED_AT", direction: "DESC" },
  { value: "created-asc", label: "Oldest first", field: "CREATED_AT", direction: "ASC" },
  { value: "due-asc", label: "Due soonest", field: "DUE_AT", direction: "ASC" },
  { value: "updated-desc", label: "Recently changed", field: "UPDATED_AT", direction: "DESC" },
];

export function TasksPage() {
  const client = useClient();
  const toasts = useToasts();
  const [status, setStatus] = useState<TaskStatus | null>(null);
  const [order, setOrder] = useState(ORDERS[0]!.value);
  const [counts, setCounts] = useState<TaskCounts | null>(null);

  const orderBy = ORDERS.find((o) => o.value === order)!;
  const tasks = usePaged<TaskFieldsFragment>(`${status}:${order}`, async (after) => {
    const variables = { first: PAGE_SIZE, after, status, orderBy: { field: orderBy.field, direction: orderBy.direction } };
    const result = await client.query(TasksQuery, variables, { requestPolicy: "network-only" }).toPromise();
    const connection = result.data?.tasks;
    if (!connection) return { page: null, error: result.error };
    return {
      page: {
        nodes: connection.edges.map((e) => e.node),
        totalCount: connection.totalCount,
        hasNextPage: connection.pageInfo.hasNextPage,
        endCursor: connection.pageInfo.endCursor ?? null,
      },
    };
  });

  const [countsVersion, setCountsVersion] = useState(0);
  const loadCounts = useCallback(() => setCountsVersion((v) => v + 1), []);
  useEffect(() => {
    let current = true;
    void client
      .query(TaskCountsQuery, {}, { requestPolicy: "network-only" })
      .toPromise()
      .then(({ data: d }) => {
        if (current && d) {
          setCounts({ all: d.all.totalCount, TODO: d.todo.totalCount, IN_PROGRESS: d.inProgress.totalCount, DONE: d.done.totalCount });
        }
      });
    return () => {
      current = false;
    };
  }, [client, countsVersion]);

  const { reload } = tasks;
  const deletion = useDeleteWithUndo(
    useCallback(
      async (id: string) => {
        const result = await client.mutation(DeleteTaskMutation, { id }).toPromise();
        if (!result.data?.deleteTask) toasts.show(describe(problems(result.error)[0]!), { tone: "error" });
        reload();
        loadCounts();
      },
      [client, toasts, reload, loadCounts],
    ),
  );

  const visible = tasks.nodes.filter((t) => !deletion.hidden.has(t.id));
  const filterLabel = STATUSES.find((s) => s.value === status)?.label;

  return (
    <>
      <h1>Tasks</h1>
      <TaskStats counts={counts} selected={status} onSelect={setStatus} />
      <TaskCreateForm
        onCreated={(title) => {
          toasts.show(`Added “${title}”.`);
          reload();
          loadCounts();
        }}
      />
      <section className="card" aria-labelledby="task-list-heading">
        <div className="list-header">
          <h2 id="task-list-heading">{filterLabel ? `${filterLabel} tasks` : "All tasks"}</h2>
          <div className="filters">
            <label>
              Status
              <select value={status ?? ""} onChange={(e) => setStatus((e.target.value || null) as TaskStatus | null)}>
                <option value="">Any</option>
                {STATUSES.map((s) => (
                  <option key={s.value} value={s.value}>
                    {s.label}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Order
              <select value={order} onChange={(e) => setOrder(e.target.value)}>
                {ORDERS.map((o) => (
                  <option key={o.value} value={o.value}>
                    {o.label}
                  </option>
                ))}
              </select>
            </label>
          </div>
        </div>
        {tasks.problem && (
          <div className="error-state" role="alert">
            <p>Tasks could not be loaded: {describe(tasks.problem)}</p>
            <button type="button" onClick={tasks.reload}>
              Try again
            </button>
          </div>
        )}
        {!tasks.problem && !tasks.loading && visible.length === 0 && (
          <p className="empty-state">{status ? "No tasks with this status." : "No tasks yet. Add one above."}</p>
        )}
        {tasks.loading && visible.length === 0 && !tasks.problem && <p className="loading">Loading tasks…</p>}
        <ul className="task-list" aria-busy={tasks.loading}>
          {visible.map((task) => (
            <TaskItem
              key={task.id}
              task={task}
              onChanged={(updated, previous) => {
                tasks.replace((t) => t.id === updated.id, updated);
                if (updated.status !== previous) loadCounts();
                if (status && updated.status !== status) reload();
              }}
              onDelete={(t) => {
                deletion.remove(t.id);
                toasts.show(`Deleted “${t.title}”.`, { action: { label: "Undo", run: () => deletion.undo(t.id) } });
              }}
            />
          ))}
        </ul>
        {tasks.hasNextPage && (
          <button type="button" className="load-more" onClick={tasks.loadMore} disabled={tasks.loadingMore}>
            {tasks.loadingMore ? "Loading…" : `Load more (${visible.length} of ${tasks.totalCount})`}
          </button>
        )}
      </section>
    </>
  );
}
