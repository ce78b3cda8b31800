// One file: rename inline, download through a fresh signed URL, delete.
import { useState, type FormEvent } from "react";
import { useClient } from "urql";
import { DownloadUrlQuery, RenameFileMutation } from "../../api/documents";
import { describe, problems } from "../../api/graphqlErrors";
import { Field } from "../../components/Field";
import { useToasts } from "../../components/Toasts";
import type { FileFieldsFragment } from "../../gql/graphql";
import { formatBytes } from "./limits";

interface Props {
  file: FileFieldsFragment;
  onRenamed: (file: FileFieldsFragment) => void;
  onDelete: (file: FileFieldsFragment) => void;
}

export function FileItem({ file, onRenamed, onDelete }: Props) {
  const client = useClient();
  const toasts = useToasts();
  const [renaming, setRenaming] = useState(false);
  const [name, setName] = useState(file.filename);
  const [error, setError] = useState<string | undefined>();

  async function rename(event: FormEvent) {
    event.preventDefault();
    const result = await client.mutation(RenameFileMutation, { id: file.id, filename: name }).toPromise();
    if (result.data?.renameFile) {
      onRenamed(result.data.renameFile);
      setRenaming(false);
      setError(undefined);
    } else {
      setError(describe(problems(result.error)[0]!));
    }
  }

  // Signed URLs live five minutes: one is asked for at the click, not when the list loaded.
  async function download() {
    const result = await client.query(DownloadUrlQuery, { id: file.id }, { requestPolicy: "network-only" }).toPromise();
    const url = result.data?.file?.downloadUrl;
    if (!url) {
      toasts.show(describe(problems(result.error)[0] ?? { code: "NOT_FOUND", message: "The file is gone." }), { tone: "error" });
      return;
    }
    const link = document.createElement("a");
    link.href = url;
    link.download = file.filename;
    document.body.append(link);
    link.click();
    link.remove();
  }

  if (renaming) {
    return (
      <li className="file editing">
        <form onSubmit={rename} aria-label={`Rename ${file.filename}`} className="rename-form">
          <Field label="File name" name="filename" value={name} autoFocus onChange={(e) => setName(e.target.value)} error={error} />
          <div className="button-row">
            <button type="submit" className="primary">
              Save
            </button>
            <button
              type="button"
              onClick={() => {
                setRenaming(false);
                setName(file.filename);
                setError(undefined);
              }}
            >
              Cancel
            </button>
          </div>
        </form>
      </li>
    );
  }
  return (
    <li className="file" aria-label={file.filename}>
      <div className="file-main">
        <span className="file-name">{file.filename}</span>
        <span className="file-meta">
          {formatBytes(file.size)} · {file.contentType} · {new Date(file.createdAt).toLocaleDateString()}
        </span>
      </div>
      <div className="file-actions">
        <button type="button" onClick={() => void download()} aria-label={`Download ${file.filename}`}>
          Download
        </button>
        <button type="button" onClick={() => setRenaming(true)} aria-label={`Rename ${file.filename}`}>
          Rename
        </button>
        <button type="button" className="danger" onClick={() => onDelete(file)} aria-label={`Delete ${file.filename}`}>
          Delete
        </button>
      </div>
    </li>
  );
}
