// Deleting hides at once and commits after a grace period, unless undone; a
// page left early commits what is pending.
import { useCallback, useEffect, useRef, useState } from "react";

export const UNDO_MS = 5000;

export function useDeleteWithUndo(commit: (id: string) => Promise<void>, graceMs: number = UNDO_MS) {
  const [hidden, setHidden] = useState<ReadonlySet<string>>(new Set());
  const pending = useRef(new Map<string, ReturnType<typeof setTimeout>>());
  const commitRef = useRef(commit);
  useEffect(() => {
    commitRef.current = commit;
  });

  const unhide = useCallback((id: string) => {
    setHidden((set) => {
      const next = new Set(set);
      next.delete(id);
      return next;
    });
  }, []);

  const remove = useCallback(
    (id: string) => {
      setHidden((set) => new Set(set).add(id));
      const timer = setTimeout(() => {
        pending.current.delete(id);
        void commitRef.current(id).finally(() => unhide(id));
      }, graceMs);
      pending.current.set(id, timer);
    },
    [graceMs, unhide],
  );

  const undo = useCallback(
    (id: string) => {
      const timer = pending.current.get(id);
      if (timer === undefined) return;
      clearTimeout(timer);
      pending.current.delete(id);
      unhide(id);
    },
    [unhide],
  );

  useEffect(() => {
    const timers = pending.current;
    return () => {
      for (const [id, timer] of timers) {
        clearTimeout(timer);
        void commitRef.current(id);
      }
      timers.clear();
    };
  }, []);

  return { hidden, remove, undo };
}
