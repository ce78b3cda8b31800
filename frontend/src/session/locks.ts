// One refresh at a time across every tab of the origin: the Web Locks API.

export interface Locks {
  /** Runs `task` while holding the lock `name`, after every earlier holder. */
  run<T>(name: string, task: () => Promise<T>): Promise<T>;
}

export function browserLocks(): Locks {
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  if (!locks) return inTabLocks();
  return { run: (name, task) => locks.request(name, task) as Promise<Awaited<ReturnType<typeof task>>> };
}

/** A lock per name within this JavaScript realm (tests, and browsers without Web Locks). */
export function inTabLocks(): Locks {
  const tails = new Map<string, Promise<unknown>>();
  return {
    run<T>(name: string, task: () => Promise<T>): Promise<T> {
      const previous = tails.get(name) ?? Promise.resolve();
      const result = previous.then(task, task);
      tails.set(
        name,
        result.catch(() => undefined),
      );
      return result;
    },
  };
}
