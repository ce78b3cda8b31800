import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Client, fetchExchange } from "@urql/core";
import { Provider } from "urql";
import { describe, expect, it, vi } from "vitest";
import { TaskCreateForm } from "./TaskCreateForm";

function setup(answer: unknown) {
  const fetch = vi.fn(async (_input: RequestInfo | URL, _init?: RequestInit) =>
    new Response(JSON.stringify(answer), { headers: { "content-type": "application/json" } }),
  );
  const client = new Client({ url: "/graphql", exchanges: [fetchExchange], fetch });
  const onCreated = vi.fn();
  render(
    <Provider value={client}>
      <TaskCreateForm onCreated={onCreated} />
    </Provider>,
  );
  return { fetch, onCreated, user: userEvent.setup() };
}

describe("TaskCreateForm", () => {
  it("asks for a title without calling the API", async () => {
    const { fetch, user } = setup({});
    await user.click(screen.getByRole("button", { name: "Add task" }));
    expect(screen.getByLabelText("Title")).toHaveAccessibleDescription("Give the task a title.");
    expect(fetch).not.toHaveBeenCalled();
  });

  it("puts the server's refusal on the field it names", async () => {
    const { user } = setup({
      data: null,
      errors: [{ message: "The description holds a control character", extensions: { code: "BAD_USER_INPUT", field: "input.description" } }],
    });
    await user.type(screen.getByLabelText("Title"), "Report");
    await user.click(screen.getByRole("button", { name: "Add task" }));
    expect(await screen.findByText("The description holds a control character")).toBeInTheDocument();
    expect(screen.getByLabelText("Description")).toHaveAttribute("aria-invalid", "true");
  });

  it("sends the due date as an instant and clears the form", async () => {
    const task = { __typename: "Task", id: "t1", title: "Report", description: null, status: "TODO", dueAt: null, createdAt: "x", updatedAt: "x" };
    const { fetch, onCreated, user } = setup({ data: { createTask: task } });
    await user.type(screen.getByLabelText("Title"), "Report");
    await user.type(screen.getByLabelText("Due"), "2030-01-02T09:30");
    await user.click(screen.getByRole("button", { name: "Add task" }));
    await vi.waitFor(() => expect(onCreated).toHaveBeenCalledWith("Report"));
    const { variables } = JSON.parse(fetch.mock.calls[0]![1]!.body as string);
    expect(variables.input).toEqual({ title: "Report", description: null, dueAt: new Date("2030-01-02T09:30").toISOString() });
    expect(screen.getByLabelText("Title")).toHaveValue("");
  });
});
