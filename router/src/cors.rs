//! CORS for the listed origins only, credentials allowed for those alone.
//!
//! Every header value is built once, at start-up, and shared: a request
//! without an `Origin` (every client but a browser on another origin) costs
//! one `Vary` header and nothing else, and the layer is copied per request as
//! a pointer. A general CORS layer rebuilds and merges its headers on every
//! request, a measurable share of a one-fetch operation.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, header};

/// What the policy allows, as the header values it answers with.
struct Policy {
    origins: Vec<HeaderValue>,
    allow_methods: HeaderValue,
    allow_headers: HeaderValue,
    expose_headers: HeaderValue,
    max_age: HeaderValue,
}

/// Every response varies on these: a cache must not hand one origin's answer to another.
const VARY: HeaderValue =
    HeaderValue::from_static("origin, access-control-request-method, access-control-request-headers");
const TRUE: HeaderValue = HeaderValue::from_static("true");

/// The layer: `origins` may call with credentials, using `methods` and
/// sending `allowed` headers, and may read the `exposed` ones.
#[derive(Clone)]
pub(crate) struct Cors(Arc<Policy>);

impl Cors {
    pub(crate) fn new(
        origins: &[String],
        methods: &[Method],
        allowed: &[HeaderName],
        exposed: &[HeaderName],
        max_age: Duration,
    ) -> Self {
        Self(Arc::new(Policy {
            origins: origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect(),
            allow_methods: list(methods.iter().map(Method::as_str)),
            allow_headers: list(allowed.iter().map(HeaderName::as_str)),
            expose_headers: list(exposed.iter().map(HeaderName::as_str)),
            max_age: HeaderValue::from(max_age.as_secs()),
        }))
    }

    /// The request's origin, when it is one of the listed.
    fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        headers.get(header::ORIGIN).filter(|origin| self.0.origins.contains(origin)).cloned()
    }
}

/// `a, b, c`: tokens (methods, header names) joined as a header list.
fn list<'a>(tokens: impl Iterator<Item = &'a str>) -> HeaderValue {
    HeaderValue::from_str(&tokens.collect::<Vec<_>>().join(", ")).expect("methods and header names are tokens")
}

impl<S> tower::Layer<S> for Cors {
    type Service = CorsService<S>;

    fn layer(&self, inner: S) -> CorsService<S> {
        CorsService { inner, cors: self.clone() }
    }
}

#[derive(Clone)]
pub(crate) struct CorsService<S> {
    inner: S,
    cors: Cors,
}

impl<S, B> tower::Service<Request<B>> for CorsService<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = CorsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let origin = self.cors.allowed_origin(request.headers());
        // Every OPTIONS is a preflight: the API answers no other.
        if request.method() == Method::OPTIONS {
            return CorsFuture::Preflight { response: Some(self.preflight(origin)) };
        }
        CorsFuture::Call { inner: self.inner.call(request), origin, cors: self.cors.clone() }
    }
}

impl<S> CorsService<S> {
    /// The answer to a preflight: what the listed origin may do, or to any
    /// other origin nothing but `Vary`, so its browser refuses the request.
    fn preflight(&self, origin: Option<HeaderValue>) -> Response<Body> {
        let mut response = Response::new(Body::empty()); // 200
        let headers = response.headers_mut();
        headers.insert(header::VARY, VARY);
        if let Some(origin) = origin {
            let policy = &self.cors.0;
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, policy.allow_methods.clone());
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, policy.allow_headers.clone());
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, policy.max_age.clone());
        }
        response
    }
}

pin_project_lite::pin_project! {
    /// A preflight's answer, or the inner service's with the CORS headers added.
    #[project = CorsProjection]
    pub(crate) enum CorsFuture<F> {
        Preflight { response: Option<Response<Body>> },
        Call { #[pin] inner: F, origin: Option<HeaderValue>, cors: Cors },
    }
}

impl<F, E> Future for CorsFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CorsProjection::Preflight { response } => {
                Poll::Ready(Ok(response.take().expect("a preflight future polled after it finished")))
            }
            CorsProjection::Call { inner, origin, cors } => {
                let mut response = std::task::ready!(inner.poll(cx))?;
                let headers = response.headers_mut();
                // Appended: a handler's own `Vary` (content negotiation) stays.
                headers.append(header::VARY, VARY);
                if let Some(origin) = origin.take() {
                    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                    headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
                    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, cors.0.expose_headers.clone());
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use tower::{Layer, ServiceExt};

    fn cors() -> Cors {
        let exposed = [HeaderName::from_static("x-request-id")];
        Cors::new(
            &["https://app.example.com".to_owned()],
            &[Method::GET, Method::POST],
            &[header::CONTENT_TYPE, header::AUTHORIZATION],
            &exposed,
            Duration::from_secs(600),
        )
    }

    async fn call(method: Method, origin: Option<&str>) -> Response<Body> {
        let handler = tower::service_fn(|_: Request<Body>| async {
            let mut response = Response::new(Body::empty());
            response.headers_mut().insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            Ok::<_, std::convert::Infallible>(response)
        });
        let mut request = Request::builder().method(method).uri("/graphql");
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        cors().layer(handler).oneshot(request.body(Body::empty()).unwrap()).await.unwrap()
    }

    fn header(response: &Response<Body>, name: HeaderName) -> Option<&str> {
        response.headers().get(name).map(|v| v.to_str().unwrap())
    }

    #[tokio::test]
    async fn a_listed_origin_gets_credentials_and_the_exposed_headers() {
        let response = call(Method::POST, Some("https://app.example.com")).await;
        assert_eq!(header(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN), Some("https://app.example.com"));
        assert_eq!(header(&response, header::ACCESS_CONTROL_ALLOW_CREDENTIALS), Some("true"));
        assert_eq!(header(&response, header::ACCESS_CONTROL_EXPOSE_HEADERS), Some("x-request-id"));
        let vary: Vec<_> = response.headers().get_all(header::VARY).iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(vary, ["accept-encoding", VARY.to_str().unwrap()], "the handler's own Vary is kept");
    }

    #[tokio::test]
    async fn any_other_origin_or_none_gets_only_vary() {
        for origin in [Some("https://evil.example"), Some("https://app.example.com.evil.example"), None] {
            let response = call(Method::POST, origin).await;
            assert_eq!(header(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN), None, "{origin:?}");
            assert_eq!(header(&response, header::ACCESS_CONTROL_ALLOW_CREDENTIALS), None, "{origin:?}");
            assert_eq!(header(&response, header::ACCESS_CONTROL_EXPOSE_HEADERS), None, "{origin:?}");
            assert_eq!(response.headers().get_all(header::VARY).iter().count(), 2, "{origin:?}");
        }
    }

    #[tokio::test]
    async fn a_preflight_is_answered_without_the_handler() {
        let allowed = call(Method::OPTIONS, Some("https://app.example.com")).await;
        assert_eq!(allowed.status(), StatusCode::OK);
        assert_eq!(header(&allowed, header::ACCESS_CONTROL_ALLOW_METHODS), Some("GET, POST"));
        assert_eq!(header(&allowed, header::ACCESS_CONTROL_ALLOW_HEADERS), Some("content-type, authorization"));
        assert_eq!(header(&allowed, header::ACCESS_CONTROL_MAX_AGE), Some("600"));
        assert_eq!(header(&allowed, header::VARY), Some(VARY.to_str().unwrap()), "not the handler's");

        let foreign = call(Method::OPTIONS, Some("https://evil.example")).await;
        assert_eq!(foreign.status(), StatusCode::OK);
        for name in [header::ACCESS_CONTROL_ALLOW_ORIGIN, header::ACCESS_CONTROL_ALLOW_METHODS] {
            assert_eq!(header(&foreign, name.clone()), None, "{name}");
        }
    }
}
