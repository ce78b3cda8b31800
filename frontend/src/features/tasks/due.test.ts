import { describe, expect, it } from "vitest";
import { fromLocalInput, toLocalInput, urgency } from "./due";

const now = Date.parse("2030-01-10T12:00:00Z");

describe("urgency", () => {
  it("marks past due dates overdue and the next two days due soon, unless done", () => {
    expect(urgency("2030-01-10T11:00:00Z", "TODO", now)).toBe("overdue");
    expect(urgency("2030-01-11T12:00:00Z", "IN_PROGRESS", now)).toBe("due-soon");
    expect(urgency("2030-01-13T12:00:00Z", "TODO", now)).toBeNull();
    expect(urgency("2030-01-01T00:00:00Z", "DONE", now)).toBeNull();
    expect(urgency(null, "TODO", now)).toBeNull();
  });

  it("round-trips a datetime-local value", () => {
    const iso = fromLocalInput("2030-03-04T05:06");
    expect(iso).not.toBeNull();
    expect(toLocalInput(iso)).toBe("2030-03-04T05:06");
    expect(fromLocalInput("")).toBeNull();
  });
});
