// One task: status select, inline edit, delete (undone from the toast).
import { useId, useState, type FormEvent } from "react";
import { useClient } from "urql";
import { UpdateTaskMutation } from "../../api/documents";
import { describe, problems, splitByField } from "../../api/graphqlErrors";
import { Field, FormError } from "../../components/Field";
import { useToasts } from "../../components/Toasts";
import type { TaskFieldsFragment, TaskStatus } from "../../gql/graphql";
import { formatDue, fromLocalInput, toLocalInput, urgency } from "./due";
import { STATUSES } from "./status";

interface Props {
  task: TaskFieldsFragment;
  onChanged: (task: TaskFieldsFragment, previousStatus: TaskStatus) => void;
  onDelete: (task: TaskFieldsFragment) => void;
}

export function TaskItem({ task, onChanged, onDelete }: Props) {
  const [editing, setEditing] = useState(false);
  const client = useClient();
  const toasts = useToasts();
  const statusId = useId();
  const mark = urgency(task.dueAt, task.status);

  async function changeStatus(status: TaskStatus) {
    const result = await client.mutation(UpdateTaskMutation, { id: task.id, input: { status } }).toPromise();
    if (result.data?.updateTask) onChanged(result.data.updateTask, task.status);
    else toasts.show(describe(problems(result.error)[0]!), { tone: "error" });
  }

  if (editing) {
    return (
      <li className="task editing">
        <TaskEditForm task={task} onDone={() => setEditing(false)} onSaved={(t) => onChanged(t, task.status)} />
      </li>
    );
  }
  return (
    <li className={`task ${task.status === "DONE" ? "done" : ""}`} aria-label={task.title}>
      <div className="task-main">
        <h3 className="task-title">{task.title}</h3>
        {task.description && <p className="task-description">{task.description}</p>}
        <p className="task-meta">
          {task.dueAt && <span>Due {formatDue(task.dueAt)}</span>}
          {mark === "overdue" && <span className="badge badge-overdue">Overdue</span>}
          {mark === "due-soon" && <span className="badge badge-soon">Due soon</span>}
        </p>
      </div>
      <div className="task-actions">
        <label htmlFor={statusId} className="visually-hidden">
          Status of {task.title}
        </label>
        <select id={statusId} value={task.status} onChange={(e) => void changeStatus(e.target.value as TaskStatus)}>
          {STATUSES.map((s) => (
            <option key={s.value} value={s.value}>
              {s.label}
            </option>
          ))}
        </select>
        <button type="button" onClick={() => setEditing(true)} aria-label={`Edit ${task.title}`}>
          Edit
        </button>
        <button type="button" className="danger" onClick={() => onDelete(task)} aria-label={`Delete ${task.title}`}>
          Delete
        </button>
      </div>
    </li>
  );
}

const FIELDS = ["input.title", "input.description", "input.dueAt"] as const;

function TaskEditForm({
  task,
  onDone,
  onSaved,
}: {
  task: TaskFieldsFragment;
  onDone: () => void;
  onSaved: (task: TaskFieldsFragment) => void;
}) {
  const client = useClient();
  const [title, setTitle] = useState(task.title);
  const [description, setDescription] = useState(task.description ?? "");
  const [due, setDue] = useState(toLocalInput(task.dueAt));
  const [errors, setErrors] = useState<ReturnType<typeof splitByField>>({ byField: {}, general: [] });

  async function save(event: FormEvent) {
    event.preventDefault();
    const input = { title, description: description || null, dueAt: fromLocalInput(due) };
    const result = await client.mutation(UpdateTaskMutation, { id: task.id, input }).toPromise();
    if (result.data?.updateTask) {
      onSaved(result.data.updateTask);
      onDone();
    } else {
      setErrors(splitByField(problems(result.error), FIELDS));
    }
  }

  return (
    <form onSubmit={save} aria-label={`Edit ${task.title}`} noValidate>
      <Field
        label="Title"
        name="title"
        value={title}
        maxLength={200}
        autoFocus
        onChange={(e) => setTitle(e.target.value)}
        error={errors.byField["input.title"]}
      />
      <Field
        label="Description"
        name="description"
        multiline
        value={description}
        onChange={(e) => setDescription(e.target.value)}
        error={errors.byField["input.description"]}
      />
      <Field label="Due" name="dueAt" type="datetime-local" value={due} onChange={(e) => setDue(e.target.value)} />
      <FormError messages={errors.general} />
      <div className="button-row">
        <button type="submit" className="primary">
          Save
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
