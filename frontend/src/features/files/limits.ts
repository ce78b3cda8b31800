// What the files service accepts by default (UPLOAD_MAX_FILE_BYTES, UPLOAD_MAX_FILES,
// UPLOAD_ALLOWED_TYPES), told before an upload; the server's refusal is shown too,
// so a deployment with other limits is still explained.
export const MAX_FILE_BYTES = 10 * 1024 * 1024;

export const ALLOWED_KINDS = "images, PDF, text, CSV, JSON, zip and office documents";

const ALLOWED_TYPES = [
  /^image\/(png|jpeg|gif|webp|bmp|tiff|avif)$/,
  /^application\/(pdf|json|zip|msword|vnd\.ms-excel|vnd\.ms-powerpoint)$/,
  /^application\/vnd\.openxmlformats-officedocument\./,
  /^application\/vnd\.oasis\.opendocument\./,
  /^text\/(plain|csv|markdown)$/,
];

/** Why a file would be refused, or null. The browser's type is a guess (the server sniffs), so an unknown one passes. */
export function refusalBeforeUpload(file: Pick<File, "size" | "type" | "name">): string | null {
  if (file.size > MAX_FILE_BYTES) return `${file.name} is ${formatBytes(file.size)}, over the ${formatBytes(MAX_FILE_BYTES)} limit for one file.`;
  if (file.type && !ALLOWED_TYPES.some((pattern) => pattern.test(file.type))) {
    return `${file.name} is ${file.type}, which is not accepted (${ALLOWED_KINDS}).`;
  }
  return null;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}
