// The upload queue: each file its own request, so each has its own progress and its own refusal.
import { useCallback, useState } from "react";
import { UploadFileMutation } from "../../api/documents";
import { GRAPHQL_PATH } from "../../api/refresh";
import { describe } from "../../api/graphqlErrors";
import { refusedToken, uploadFile, type UploadResult } from "../../api/upload";
import { useSession } from "../../app/SessionContext";
import type { UploadFileMutation as UploadFileResult } from "../../gql/graphql";
import { refusalBeforeUpload } from "./limits";

export interface UploadItem {
  key: number;
  name: string;
  size: number;
  loaded: number;
  state: "uploading" | "done" | "failed";
  message?: string | undefined;
}

let nextKey = 1;

export function useUploads(onUploaded: () => void) {
  const session = useSession();
  const [items, setItems] = useState<UploadItem[]>([]);

  const update = useCallback((key: number, change: Partial<UploadItem>) => {
    setItems((list) => list.map((item) => (item.key === key ? { ...item, ...change } : item)));
  }, []);

  const uploadOne = useCallback(
    async (file: File) => {
      const key = nextKey++;
      const refusal = refusalBeforeUpload(file);
      setItems((list) => [
        ...list,
        { key, name: file.name, size: file.size, loaded: 0, state: refusal ? "failed" : "uploading", message: refusal ?? undefined },
      ]);
      if (refusal) return;
      const send = (token: string | null): Promise<UploadResult<UploadFileResult>> =>
        uploadFile<UploadFileResult>({
          url: GRAPHQL_PATH,
          document: UploadFileMutation,
          variable: "file",
          file,
          token,
          onProgress: ({ loaded, total }) => update(key, { loaded: Math.round((file.size * loaded) / Math.max(total, 1)) }),
        });
      const token = await session.accessToken();
      let result = await send(token);
      if (token && refusedToken(result)) {
        const renewed = await session.renewAfterRefusal(token);
        if (renewed) result = await send(renewed);
      }
      if (result.ok) {
        update(key, { state: "done", loaded: file.size });
        onUploaded();
      } else {
        update(key, { state: "failed", message: describe(result.problem) });
      }
    },
    [session, update, onUploaded],
  );

  const upload = useCallback((files: File[]) => Promise.all(files.map(uploadOne)), [uploadOne]);
  const clearFinished = useCallback(() => setItems((list) => list.filter((i) => i.state === "uploading")), []);

  return { items, upload, clearFinished };
}
