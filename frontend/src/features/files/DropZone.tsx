// Drop files here or pick them; several at once.
import { useId, useRef, useState, type DragEvent } from "react";
import { ALLOWED_KINDS, MAX_FILE_BYTES, formatBytes } from "./limits";

export function DropZone({ onFiles }: { onFiles: (files: File[]) => void }) {
  const [over, setOver] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const inputId = useId();
  const hintId = useId();

  function drop(event: DragEvent) {
    event.preventDefault();
    setOver(false);
    const files = Array.from(event.dataTransfer.files);
    if (files.length > 0) onFiles(files);
  }

  return (
    <div
      className={over ? "dropzone over" : "dropzone"}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={drop}
      data-testid="dropzone"
    >
      <p>
        <strong>Drop files here</strong> or{" "}
        <label htmlFor={inputId} className="link-label">
          choose files
        </label>
      </p>
      <input
        ref={input}
        id={inputId}
        type="file"
        multiple
        className="visually-hidden-input"
        aria-describedby={hintId}
        onChange={(e) => {
          const files = Array.from(e.target.files ?? []);
          if (files.length > 0) onFiles(files);
          e.target.value = "";
        }}
      />
      <p id={hintId} className="hint">
        Up to {formatBytes(MAX_FILE_BYTES)} each: {ALLOWED_KINDS}.
      </p>
    </div>
  );
}
