//! The GraphiQL page served at `GET /graphql` to browsers, with its script and
//! stylesheet embedded in the binary (built from pinned npm packages in
//! `router/graphiql/`, whose `npm run check` fails when the committed build is not
//! what its lockfile builds to), so it works with no network at all.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// Where the assets are served; the page names them.
pub const SCRIPT_PATH: &str = "/graphiql/graphiql.js";
pub const STYLE_PATH: &str = "/graphiql/graphiql.css";

const SCRIPT: &[u8] = include_bytes!("../graphiql/dist/graphiql.js");
const STYLE: &[u8] = include_bytes!("../graphiql/dist/graphiql.css");

/// Only this origin: no CDN, no inline script. GraphiQL's stylesheet carries its
/// fonts as `data:` URLs; its dialogs add a `<style>`, allowed by the page's nonce
/// (`{nonce}`, new for every response), and its editors set styles through the CSSOM.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; \
     font-src 'self' data:; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <meta name="viewport" content="width=device-width, initial-scale=1" />
  <title>taskgraph · GraphiQL</title>
  <meta name="csp-nonce" content="{nonce}" />
  <link rel="stylesheet" href="/graphiql/graphiql.css" />
  <script type="module" src="/graphiql/graphiql.js"></script>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
</body>
</html>
"#;

pub fn page() -> Response {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let mut response = axum::response::Html(PAGE.replace("{nonce}", &nonce)).into_response();
    let headers = response.headers_mut();
    let csp = CONTENT_SECURITY_POLICY.replace("{nonce}", &nonce);
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(&csp).expect("a nonce is hex"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        // Not content-hashed names: an hour, then the browser asks again.
        (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
    ];
    (headers, body).into_response()
}
