// What the API's errors mean to a user: a code, an optional field, a retry time.
import type { CombinedError } from "@urql/core";

export interface ApiProblem {
  code: string;
  message: string;
  /** `extensions.field`, e.g. "email" or "input.title". */
  field?: string | undefined;
  /** Seconds, for RATE_LIMITED and UNAVAILABLE. */
  retryAfter?: number | undefined;
}

interface ErrorLike {
  message: string;
  extensions?: Record<string, unknown> | undefined;
}

export function problemFrom(error: ErrorLike): ApiProblem {
  const ext = error.extensions ?? {};
  const code = typeof ext.code === "string" ? ext.code : "INTERNAL";
  return {
    code,
    message: error.message,
    field: typeof ext.field === "string" ? ext.field : undefined,
    retryAfter: typeof ext.retryAfter === "number" ? ext.retryAfter : undefined,
  };
}

/** The problems in an urql error; a network failure is one UNAVAILABLE problem. */
export function problems(error: CombinedError | undefined): ApiProblem[] {
  if (!error) return [];
  if (error.graphQLErrors.length > 0) return error.graphQLErrors.map(problemFrom);
  return [{ code: "NETWORK", message: "The server could not be reached. Check your connection and try again." }];
}

/** One sentence for a user, with the wait when there is one. */
export function describe(problem: ApiProblem): string {
  if (problem.code === "RATE_LIMITED" && problem.retryAfter !== undefined) {
    return `Too many attempts. Try again in ${formatWait(problem.retryAfter)}.`;
  }
  if (problem.code === "INTERNAL") return "Something went wrong on our side. Please try again.";
  return problem.message;
}

export function formatWait(seconds: number): string {
  if (seconds < 60) return `${Math.max(1, Math.ceil(seconds))} s`;
  const minutes = Math.ceil(seconds / 60);
  return minutes === 1 ? "1 minute" : `${minutes} minutes`;
}

/** Field errors by field, and what is left for the form as a whole. */
export function splitByField(list: ApiProblem[], fields: readonly string[]) {
  const byField: Record<string, string> = {};
  const general: string[] = [];
  for (const problem of list) {
    if (problem.field && fields.includes(problem.field) && !byField[problem.field]) {
      byField[problem.field] = problem.message;
    } else {
      general.push(describe(problem));
    }
  }
  return { byField, general };
}
