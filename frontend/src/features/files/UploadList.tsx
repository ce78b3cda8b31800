import type { UploadItem } from "./useUploads";
import { formatBytes } from "./limits";

export function UploadList({ items, onClear }: { items: UploadItem[]; onClear: () => void }) {
  if (items.length === 0) return null;
  const finished = items.some((i) => i.state !== "uploading");
  return (
    <section aria-label="Uploads" className="uploads">
      <ul>
        {items.map((item) => {
          const percent = item.size > 0 ? Math.min(100, Math.round((item.loaded / item.size) * 100)) : 100;
          return (
            <li key={item.key} className={`upload upload-${item.state}`}>
              <div className="upload-head">
                <span className="upload-name">{item.name}</span>
                <span className="upload-size">
                  {item.state === "uploading" && `${formatBytes(item.loaded)} of ${formatBytes(item.size)}`}
                  {item.state === "done" && "Uploaded"}
                  {item.state === "failed" && "Not uploaded"}
                </span>
              </div>
              <progress max={100} value={item.state === "failed" ? 0 : percent} aria-label={`Upload of ${item.name}`}>
                {percent}%
              </progress>
              {item.message && (
                <p className="field-error" role="alert">
                  {item.message}
                </p>
              )}
            </li>
          );
        })}
      </ul>
      {finished && (
        <button type="button" className="link-button" onClick={onClear}>
          Clear finished
        </button>
      )}
    </section>
  );
}
