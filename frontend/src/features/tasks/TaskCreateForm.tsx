// Title, description and due date; server field errors shown on their fields.
import { useState, type FormEvent } from "react";
import { useClient } from "urql";
import { CreateTaskMutation } from "../../api/documents";
import { problems, splitByField } from "../../api/graphqlErrors";
import { Field, FormError } from "../../components/Field";
import { fromLocalInput } from "./due";

const FIELDS = ["input.title", "input.description", "input.dueAt"] as const;

export function TaskCreateForm({ onCreated }: { onCreated: (title: string) => void }) {
  const client = useClient();
  const [title, setTitle] = useState("");
  const [description, setDescription] = useState("");
  const [due, setDue] = useState("");
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<ReturnType<typeof splitByField>>({ byField: {}, general: [] });

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!title.trim()) {
      setErrors({ byField: { "input.title": "Give the task a title." }, general: [] });
      return;
    }
    setBusy(true);
    const input = { title, description: description || null, dueAt: fromLocalInput(due) };
    const result = await client.mutation(CreateTaskMutation, { input }).toPromise();
    setBusy(false);
    if (result.data?.createTask) {
      setTitle("");
      setDescription("");
      setDue("");
      setErrors({ byField: {}, general: [] });
      onCreated(result.data.createTask.title);
      return;
    }
    setErrors(splitByField(problems(result.error), FIELDS));
  }

  return (
    <form className="card task-form" onSubmit={submit} noValidate aria-label="New task">
      <h2>New task</h2>
      <div className="form-row">
        <Field
          label="Title"
          name="title"
          value={title}
          maxLength={200}
          onChange={(e) => setTitle(e.target.value)}
          error={errors.byField["input.title"]}
          className="grow"
        />
        <Field
          label="Due"
          name="dueAt"
          type="datetime-local"
          value={due}
          onChange={(e) => setDue(e.target.value)}
          error={errors.byField["input.dueAt"]}
        />
      </div>
      <Field
        label="Description"
        name="description"
        multiline
        value={description}
        maxLength={5000}
        onChange={(e) => setDescription(e.target.value)}
        error={errors.byField["input.description"]}
      />
      <FormError messages={errors.general} />
      <button type="submit" className="primary" disabled={busy}>
        {busy ? "Adding…" : "Add task"}
      </button>
    </form>
  );
}
