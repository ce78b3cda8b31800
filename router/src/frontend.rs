//! The built web app (`frontend/dist`), served at `/` of the API's origin when
//! `FRONTEND_DIR` names it: files as they are, index.html for any other page path
//! (the app routes on the client), hashed assets cached for good.

use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// The app's own origin only: its scripts, styles and fonts are files of `dist/`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Vite names what it puts under `assets/` by content hash: a name never changes meaning.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

#[derive(Debug, Clone)]
pub struct Frontend {
    root: PathBuf,
}

impl Frontend {
    /// The directory must hold an `index.html`.
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(
            root.join("index.html").is_file(),
            "FRONTEND_DIR={} has no index.html (build the app: `npm run build` in frontend/)",
            root.display()
        );
        Ok(Self { root: root.to_owned() })
    }

    pub async fn serve(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
        if method != Method::GET && method != Method::HEAD {
            return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
        }
        let path = uri.path().trim_start_matches('/');
        let Some(relative) = safe_relative_path(path) else { return not_found() };
        if !relative.as_os_str().is_empty()
            && let Ok(body) = tokio::fs::read(self.root.join(&relative)).await
        {
            let cache = if path.starts_with("assets/") { IMMUTABLE } else { "no-cache" };
            return file_response(method, content_type(path), cache, body);
        }
        // `/` is the app; another page of it (no file extension) too when a browser asks; a missing file stays missing.
        let last = path.rsplit('/').next().unwrap_or_default();
        if !path.is_empty() && (last.contains('.') || !accepts_html(headers)) {
            return not_found();
        }
        match tokio::fs::read(self.root.join("index.html")).await {
            Ok(body) => file_response(method, "text/html; charset=utf-8", "no-cache", body),
            Err(e) => {
                tracing::error!(error = %e, root = %self.root.display(), "cannot read the app's index.html");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

/// Plain names only (letters, digits, `-`, `_`, `.`; no segment starting with a
/// dot), so no request can leave the directory or reach a hidden file.
fn safe_relative_path(path: &str) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let plain = segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !plain || segment.starts_with('.') {
            return None;
        }
        relative.push(segment);
    }
    Some(relative)
}

/// A browser navigating asks for `text/html` by name; a probe, a scraper or a
/// script asking for anything (`*/*`) or nothing gets a 404 rather than the app.
fn accepts_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("text/html"))
}

fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn file_response(method: &Method, content_type: &'static str, cache: &'static str, body: Vec<u8>) -> Response {
    let length = body.len();
    let mut response = if method == Method::HEAD { Vec::new().into_response() } else { body.into_response() };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if content_type.starts_with("text/html") {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    }
    response
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "not found\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_could_leave_the_directory_or_reach_hidden_files_are_refused() {
        for path in ["../etc/passwd", "assets/../../x", ".env", "a/.git/config", "a%2f..", "a\\b", "x y"] {
            assert_eq!(safe_relative_path(path), None, "{path}");
        }
        assert_eq!(safe_relative_path("assets/index-Abc_1.js"), Some(PathBuf::from("assets/index-Abc_1.js")));
        assert_eq!(safe_relative_path(""), Some(PathBuf::new()));
    }
}
