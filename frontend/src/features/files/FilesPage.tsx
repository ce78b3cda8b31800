import { useCallback } from "react";
import { useClient } from "urql";
import { DeleteFileMutation, FilesQuery } from "../../api/documents";
import { describe, problems } from "../../api/graphqlErrors";
import { useDeleteWithUndo } from "../../app/useDeleteWithUndo";
import { usePaged } from "../../app/usePaged";
import { useToasts } from "../../components/Toasts";
import type { FileFieldsFragment } from "../../gql/graphql";
import { DropZone } from "./DropZone";
import { FileItem } from "./FileItem";
import { UploadList } from "./UploadList";
import { useUploads } from "./useUploads";

const PAGE_SIZE = 20;

export function FilesPage() {
  const client = useClient();
  const toasts = useToasts();
  const files = usePaged<FileFieldsFragment>("files", async (after) => {
    const result = await client.query(FilesQuery, { first: PAGE_SIZE, after }, { requestPolicy: "network-only" }).toPromise();
    const connection = result.data?.files;
    if (!connection) return { page: null, error: result.error };
    return {
      page: {
        nodes: connection.edges.map((e) => e.node),
        totalCount: connection.totalCount,
        hasNextPage: connection.pageInfo.hasNextPage,
        endCursor: connection.pageInfo.endCursor ?? null,
      },
    };
  });
  const { reload } = files;
  const uploads = useUploads(reload);
  const deletion = useDeleteWithUndo(
    useCallback(
      async (id: string) => {
        const result = await client.mutation(DeleteFileMutation, { id }).toPromise();
        if (!result.data?.deleteFile) toasts.show(describe(problems(result.error)[0]!), { tone: "error" });
        reload();
      },
      [client, toasts, reload],
    ),
  );
  const visible = files.nodes.filter((f) => !deletion.hidden.has(f.id));

  return (
    <>
      <h1>Files</h1>
      <section className="card" aria-label="Upload files">
        <DropZone onFiles={(list) => void uploads.upload(list)} />
        <UploadList items={uploads.items} onClear={uploads.clearFinished} />
      </section>
      <section className="card" aria-labelledby="file-list-heading">
        <h2 id="file-list-heading">Your files {files.totalCount > 0 && <span className="count">({files.totalCount})</span>}</h2>
        {files.problem && (
          <div className="error-state" role="alert">
            <p>Files could not be loaded: {describe(files.problem)}</p>
            <button type="button" onClick={files.reload}>
              Try again
            </button>
          </div>
        )}
        {!files.problem && !files.loading && visible.length === 0 && <p className="empty-state">No files yet.</p>}
        <ul className="file-list" aria-busy={files.loading}>
          {visible.map((file) => (
            <FileItem
              key={file.id}
              file={file}
              onRenamed={(renamed) => files.replace((f) => f.id === renamed.id, renamed)}
              onDelete={(f) => {
                deletion.remove(f.id);
                toasts.show(`Deleted ${f.filename}.`, { action: { label: "Undo", run: () => deletion.undo(f.id) } });
              }}
            />
          ))}
        </ul>
        {files.hasNextPage && (
          <button type="button" className="load-more" onClick={files.loadMore} disabled={files.loadingMore}>
            {files.loadingMore ? "Loading…" : `Load more (${visible.length} of ${files.totalCount})`}
          </button>
        )}
      </section>
    </>
  );
}
