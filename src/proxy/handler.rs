//! The hudsucker handler: decides what is intercepted and attaches an [`Exchange`] to each
//! LLM call.
//!
//! hudsucker gives every request (and every HTTP/2 stream) its own clone of the handler,
//! and calls `handle_request` then `handle_response`/`handle_error` on that same clone, so
//! per-call state lives in a field with no map or lock. Clones start empty.

use std::sync::Arc;

use super::{
    tap_body::{idle_limit, tap},
    upstream::{self, ConnectTimeout, DestinationRefused, ResolveMap, Upstream},
    websocket,
};
use crate::{
    caller::{self, Attribution, Caller, header_str},
    config::Config,
    dialects::Target,
    exchange::{Exchange, Observing, RequestHead, TraceParent, WsSession},
    policy::{DestinationPolicy, Refusal},
    telemetry::{RateLimit, Telemetry},
    vocab::ErrorType,
    wire::normalize_host,
};
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use hudsucker::{Body, HttpContext, HttpHandler, RequestOrResponse};
use hyper_util::client::legacy::Error as ClientError;

/// What every clone shares.
pub struct Shared {
    /// Metrics the handler moves itself (refusals, tunnels, auth failures).
    pub telemetry: Arc<Telemetry>,
    /// What every call's exchange shares (limits, capture, budget, where calls go).
    observing: Arc<Observing>,
    /// The provider table (`Config::providers`): which hosts are decrypted, and which of
    /// their requests are LLM calls.
    pub providers: Arc<crate::providers::Providers>,
    /// `--team` / `--user`: the attribution of last resort.
    pub attribution: Attribution,
    /// `--auth-file`: who may use the proxy.
    auth: Option<crate::config::auth::AuthFile>,
    /// The upstream connector, for WebSocket upgrades llmtap relays itself.
    connector: Upstream,
    /// Where clients may go (`--allow-destination` on top of the defaults).
    policy: Arc<DestinationPolicy>,
    /// `--resolve`, for blind tunnels (the connector applies it to intercepted ones).
    resolve: Arc<ResolveMap>,
    timeouts: crate::config::Timeouts,
    upstream_warning: RateLimit,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("providers", &self.providers.intercepted())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// What the handlers of one proxy share: `config`'s provider table, attribution, auth
    /// file and timeouts, with the connector, policy and `--resolve` map [`super::serve`]
    /// built from it.
    pub fn new(
        config: &Config,
        telemetry: Arc<Telemetry>,
        observing: Arc<Observing>,
        connector: Upstream,
        policy: Arc<DestinationPolicy>,
        resolve: Arc<ResolveMap>,
    ) -> Shared {
        Shared {
            telemetry,
            observing,
            providers: config.providers.clone(),
            attribution: config.attribution.clone(),
            auth: config.auth.clone(),
            connector,
            policy,
            resolve,
            timeouts: config.timeouts,
            upstream_warning: RateLimit::new(std::time::Duration::from_secs(10)),
        }
    }

    fn intercepts(&self, host: &str) -> bool {
        self.providers.intercepts(host)
    }

    /// The destination policy for a CONNECT or absolute-form target; `--resolve` targets
    /// are the operator's and pass.
    fn refused(&self, host: &str, port: u16) -> Option<Refusal> {
        if self.resolve.contains_key(&(host.to_owned(), port)) {
            return None;
        }
        self.policy.check(host, port).err()
    }
}

/// llmtap's hudsucker handler: one clone per connection and per request (see the module
/// docs), holding at most one call's [`Exchange`].
pub struct Tap {
    shared: Arc<Shared>,
    /// Who the tunnel's proxy credentials name: set on CONNECT, inherited by every request
    /// in the tunnel (hudsucker clones the CONNECT's handler for them).
    identity: Attribution,
    /// This handler belongs to an admitted tunnel (set on its CONNECT).
    admitted: bool,
    call: Option<Exchange>,
}

impl Tap {
    /// The handler hudsucker clones for every connection: no identity, not admitted, no
    /// call.
    pub fn new(shared: Arc<Shared>) -> Tap {
        Tap {
            shared,
            identity: Attribution::default(),
            admitted: false,
            call: None,
        }
    }
}

impl Tap {
    /// What the request says about the call before its body.
    fn head(&self, req: &Request<Body>, host: String, port: u16) -> RequestHead {
        let headers = req.headers();
        RequestHead {
            caller: Caller::identify(&host, headers, &self.identity, &self.shared.attribution),
            host,
            port,
            method: req.method().as_str().to_owned(),
            path: req.uri().path().to_owned(),
            traceparent: header_str(headers, "traceparent").and_then(TraceParent::parse),
        }
    }

    async fn relay_websocket(
        &self,
        req: Request<Body>,
        route: Option<crate::providers::Route>,
        head: RequestHead,
    ) -> RequestOrResponse {
        let observing = self.shared.observing.clone();
        let on_open = move |_extensions: Option<&str>| -> Box<dyn websocket::MessageObserver> {
            Box::new(WsSession::new(observing, route, head))
        };
        let timeouts = websocket::WsTimeouts {
            response: self.shared.timeouts.response,
            stream_idle: self.shared.timeouts.stream_idle,
        };
        match websocket::relay(req, self.shared.connector.clone(), timeouts, on_open).await {
            Ok(res) => res.into(),
            Err(err) => {
                let response = match &err {
                    websocket::WsError::Timeout(_) => status_only(StatusCode::GATEWAY_TIMEOUT),
                    websocket::WsError::Refused(refusal) => {
                        self.shared.telemetry.metrics.destination_refused(*refusal);
                        destination_forbidden(*refusal)
                    }
                    _ => status_only(StatusCode::BAD_GATEWAY),
                };
                if let Some(suppressed) = self.shared.upstream_warning.allow() {
                    let code = response.status().as_u16();
                    tracing::warn!(error = %err, suppressed, "websocket upstream failed; client gets {code}");
                }
                response.into()
            }
        }
    }
}

impl Clone for Tap {
    fn clone(&self) -> Self {
        Tap {
            shared: self.shared.clone(),
            identity: self.identity.clone(),
            admitted: self.admitted,
            call: None,
        }
    }
}

/// Host and port of a request inside a tunnel (absolute URI for HTTP/1, `:authority` for h2).
fn target(req: &Request<Body>) -> Option<(String, u16)> {
    let uri = req.uri();
    let host = match uri.host() {
        Some(host) => host.to_owned(),
        None => {
            let value = req.headers().get(header::HOST)?.to_str().ok()?;
            value.rsplit_once(':').map_or(value, |(h, _)| h).to_owned()
        }
    };
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("http") {
            80
        } else {
            443
        });
    Some((normalize_host(&host), port))
}

/// `Connection: upgrade` + `Upgrade: websocket` (RFC 6455 §4.1), case-insensitively.
fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let has = |name, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    has(header::CONNECTION, "upgrade") && has(header::UPGRADE, "websocket")
}

/// `403 Forbidden` for a destination the policy refuses, saying which rule and the way out.
fn destination_forbidden(refusal: Refusal) -> Response<Body> {
    let mut res = Response::new(Body::from(format!(
        "llmtap refuses this destination ({}): allow it with --allow-destination\n",
        refusal.as_str()
    )));
    *res.status_mut() = StatusCode::FORBIDDEN;
    res
}

/// An empty response with `status`.
fn status_only(status: StatusCode) -> Response<Body> {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = status;
    res
}

/// `407 Proxy Authentication Required`, asking for Basic credentials.
fn proxy_auth_required() -> Response<Body> {
    let mut res = Response::new(Body::from("proxy authentication required\n"));
    *res.status_mut() = StatusCode::PROXY_AUTHENTICATION_REQUIRED;
    res.headers_mut().insert(
        header::PROXY_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"llmtap\""),
    );
    res
}

/// The `error_type` of a failed upstream request, from its cause chain, and the policy's
/// reason when the destination policy refused the dial.
fn classify(err: &ClientError) -> (ErrorType, Option<Refusal>) {
    // io::Error hides its payload from `source()` (it reports the payload's source), and
    // connectors nest them: step into each io::Error's payload instead.
    let causes = std::iter::successors(Some(err as &(dyn std::error::Error + 'static)), |e| {
        match e.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        }
    });
    for e in causes {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return (ErrorType::UpstreamTls, None);
        }
        if e.downcast_ref::<ConnectTimeout>().is_some() {
            return (ErrorType::UpstreamTimeout, None);
        }
        if let Some(refused) = e.downcast_ref::<DestinationRefused>() {
            return (ErrorType::DestinationRefused, Some(refused.0));
        }
    }
    if err.is_connect() {
        (ErrorType::UpstreamConnect, None)
    } else {
        (ErrorType::UpstreamRequest, None)
    }
}

impl HttpHandler for Tap {
    async fn handle_request(
        &mut self,
        _ctx: &HttpContext,
        req: Request<Body>,
    ) -> RequestOrResponse {
        if req.method() == Method::CONNECT || !self.admitted {
            // With an auth file every CONNECT (and any plain proxied request) must carry
            // admitted credentials; requests inside an admitted tunnel are its own.
            let identity = match &self.shared.auth {
                Some(auth) => match auth.admit(header_str(req.headers(), "proxy-authorization")) {
                    Some(identity) => identity,
                    None => {
                        self.shared.telemetry.metrics.auth_failure();
                        return proxy_auth_required().into();
                    }
                },
                None => caller::proxy_identity(req.headers()),
            };
            // The destination policy: CONNECT targets and absolute-form requests (those
            // inside a tunnel are pinned to its CONNECT target by the proxy).
            if let Some((host, port)) = target(&req)
                && let Some(refusal) = self.shared.refused(&host, port)
            {
                self.shared.telemetry.metrics.destination_refused(refusal);
                return destination_forbidden(refusal).into();
            }
            if req.method() == Method::CONNECT {
                // A blind tunnel's name is resolved and checked before the 200, so a name
                // that resolves into a refused network gets a 403, not a 200 and a reset.
                if let Some((host, port)) = target(&req)
                    && !self.shared.intercepts(&host)
                    && let Err(e) = upstream::resolve_checked(
                        &self.shared.policy,
                        &self.shared.resolve,
                        &host,
                        port,
                    )
                    .await
                    && let Some(refused) = e.downcast_ref::<DestinationRefused>()
                {
                    self.shared.telemetry.metrics.destination_refused(refused.0);
                    return destination_forbidden(refused.0).into();
                }
                self.identity = identity;
                self.admitted = true;
                return req.into();
            }
            self.identity = identity;
        }
        let Some((host, port)) = target(&req) else {
            return req.into();
        };
        let websocket = is_websocket_upgrade(req.headers());
        if websocket && !self.shared.intercepts(&host) {
            // Every upgrade goes through llmtap's relay, which dials through the checked
            // connector (destination policy at dial time, timeouts) and strips hop-by-hop
            // fields; hudsucker's own WebSocket path does neither. Not recorded.
            let head = self.head(&req, host, port);
            return self.relay_websocket(req, None, head).await;
        }
        if !self.shared.intercepts(&host) {
            return req.into();
        }
        let target = Target {
            host: &host,
            method: req.method().as_str(),
            path: req.uri().path(),
            query: req.uri().query(),
            websocket,
        };
        let route = self.shared.providers.route(&target);
        if target.websocket {
            // Every upgrade to an intercepted host goes through llmtap's own relay, so the
            // bytes stay faithful; only those a dialect understands are recorded.
            let head = self.head(&req, host, port);
            return self.relay_websocket(req, route, head).await;
        }
        let Some(route) = route else {
            return req.into();
        };
        let head = self.head(&req, host, port);
        let exchange = Exchange::start(self.shared.observing.clone(), route, head);
        let content_length =
            header_str(req.headers(), "content-length").and_then(|v| v.parse().ok());
        let observer = exchange.request_observer(content_length);
        self.call = Some(exchange);
        req.map(|body| tap(body, observer)).into()
    }

    async fn handle_response(&mut self, _ctx: &HttpContext, res: Response<Body>) -> Response<Body> {
        let idle = self.shared.timeouts.stream_idle;
        let Some(exchange) = self.call.take() else {
            // Not a recorded call, but a wait all the same: the idle limit applies.
            return res.map(|body| idle_limit(body, idle));
        };
        let headers = res.headers();
        let observer = exchange.on_response(
            res.status().as_u16(),
            header_str(headers, "content-type"),
            header_str(headers, "content-encoding"),
            headers,
        );
        res.map(|body| tap(idle_limit(body, idle), observer))
    }

    async fn handle_error(&mut self, _ctx: &HttpContext, err: ClientError) -> Response<Body> {
        let (kind, refusal) = classify(&err);
        if self.call.as_ref().is_some_and(Exchange::request_aborted) {
            // The client broke off its own upload: not an upstream failure.
            if let Some(exchange) = self.call.take() {
                exchange.upstream_failed(kind);
            }
            return status_only(StatusCode::BAD_REQUEST);
        }
        let status = match (&kind, refusal) {
            (ErrorType::UpstreamTimeout, _) => StatusCode::GATEWAY_TIMEOUT,
            (ErrorType::DestinationRefused, Some(refusal)) => {
                self.shared.telemetry.metrics.destination_refused(refusal);
                StatusCode::FORBIDDEN
            }
            _ => StatusCode::BAD_GATEWAY,
        };
        if let Some(suppressed) = self.shared.upstream_warning.allow() {
            // Debug of hyper-util's error holds the cause chain, never the URI or headers.
            let (kind, code) = (kind.as_str(), status.as_u16());
            tracing::warn_span!("llmtap.upstream_failure", %kind).in_scope(|| {
                tracing::warn!(%kind, error = ?err, suppressed, "upstream request failed; client gets {code}");
            });
        }
        if let Some(exchange) = self.call.take() {
            exchange.upstream_failed(kind);
        }
        status_only(status)
    }

    async fn handle_timeout(&mut self, _ctx: &HttpContext) -> Response<Body> {
        if let Some(suppressed) = self.shared.upstream_warning.allow() {
            tracing::warn!(
                timeout = ?self.shared.timeouts.response,
                suppressed,
                "upstream sent no response head in time; client gets 504"
            );
        }
        if let Some(exchange) = self.call.take() {
            exchange.upstream_failed(ErrorType::UpstreamTimeout);
        }
        status_only(StatusCode::GATEWAY_TIMEOUT)
    }

    async fn connect_tunnel(
        &mut self,
        _ctx: &HttpContext,
        authority: &http::uri::Authority,
    ) -> std::io::Result<tokio::net::TcpStream> {
        let host = normalize_host(authority.host());
        let port = authority.port_u16().unwrap_or(443);
        let shared = &self.shared;
        let addrs = upstream::resolve_checked(&shared.policy, &shared.resolve, &host, port)
            .await
            .map_err(|e| {
                if let Some(refused) = e.downcast_ref::<DestinationRefused>() {
                    shared.telemetry.metrics.destination_refused(refused.0);
                }
                std::io::Error::other(e)
            })?;
        let mut last = std::io::Error::other("no address to dial");
        for addr in addrs {
            let limit = shared.timeouts.connect;
            match tokio::time::timeout(limit, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => {
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Ok(Err(e)) => last = e,
                Err(_) => last = std::io::Error::from(std::io::ErrorKind::TimedOut),
            }
        }
        Err(last)
    }

    fn on_refused(&mut self, _ctx: &HttpContext, reason: hudsucker::Refused) {
        self.shared
            .telemetry
            .metrics
            .connection_refused(reason.as_str());
    }

    async fn should_intercept_connect(&mut self, _ctx: &HttpContext, req: &Request<Body>) -> bool {
        let intercept = req
            .uri()
            .host()
            .is_some_and(|host| self.shared.intercepts(host));
        self.shared.telemetry.metrics.tunnel(intercept);
        intercept
    }
}

#[cfg(test)]
mod tests {
    use http::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn websocket_upgrades_are_recognised_case_insensitively() {
        let h = headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
        ]);
        assert!(is_websocket_upgrade(&h));
        assert!(!is_websocket_upgrade(&headers(&[("upgrade", "websocket")])));
    }
}
