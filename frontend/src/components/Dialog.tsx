// A modal dialog on the native <dialog>: focus moves in and is trapped by the
// browser, Escape closes it, and focus returns to the opener.
import { useEffect, useRef, type ReactNode } from "react";

interface DialogProps {
  open: boolean;
  title: string;
  onClose: () => void;
  children: ReactNode;
}

export function Dialog({ open, title, onClose, children }: DialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      const opener = document.activeElement as HTMLElement | null;
      dialog.showModal?.();
      dialog.setAttribute("open", "");
      return () => opener?.focus();
    }
    if (!open && dialog.open) dialog.close?.();
  }, [open]);
  if (!open) return <dialog ref={ref} aria-label={title} />;
  return (
    <dialog
      ref={ref}
      aria-labelledby="dialog-title"
      className="dialog"
      onCancel={(event) => {
        event.preventDefault();
        onClose();
      }}
    >
      <h2 id="dialog-title">{title}</h2>
      {children}
    </dialog>
  );
}
