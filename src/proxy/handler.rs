//! The hudsucker handler: decides what is intercepted and attaches an [`Exchange`] to each
//! LLM call.
//!
//! hudsucker gives every request (and every HTTP/2 stream) its own clone of the handler,
//! and calls `handle_request` then `handle_response`/`handle_error` on that same clone, so
//! per-call state lives in a field with no map or lock. Clones start empty.

use std::sync::Arc;

use super::{
    policy::{DestinationPolicy, Refusal},
    tap_body::{idle_limit, tap},
    upstream::{self, ConnectTimeout, DestinationRefused, ResolveMap, Upstream},
    websocket,
};
use crate::{
    config::Config,
    dialects::{self, Target},
    exchange::{Attribution, Billing, Client, Exchange, RequestHead, TraceParent, WsSession},
    telemetry::{RateLimit, Telemetry},
};
use hudsucker::{
    Body, HttpContext, HttpHandler, RequestOrResponse,
    hyper::{HeaderMap, Method, Request, Response, StatusCode, header},
    hyper_util::client::legacy::Error as ClientError,
};

/// What every clone shares.
pub struct Shared {
    pub telemetry: Arc<Telemetry>,
    pub intercept: std::collections::BTreeSet<String>,
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
            .field("intercept", &self.intercept)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub fn new(
        config: &Config,
        telemetry: Arc<Telemetry>,
        connector: Upstream,
        policy: Arc<DestinationPolicy>,
        resolve: Arc<ResolveMap>,
    ) -> Shared {
        Shared {
            telemetry,
            intercept: config.intercept.clone(),
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
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.intercept.contains(&host.to_ascii_lowercase())
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
            billing: billing(&host, headers),
            host,
            port,
            method: req.method().as_str().to_owned(),
            path: req.uri().path().to_owned(),
            client: Client::from_user_agent(header_str(headers, "user-agent").unwrap_or_default()),
            conversation_id: session_id(headers),
            attribution: self.attribution(headers),
            traceparent: header_str(headers, "traceparent").and_then(TraceParent::parse),
        }
    }

    /// Most specific wins, field by field: the tunnel's proxy credentials, then the
    /// `x-llmtap-team` / `x-llmtap-user` headers (observed, not removed), then the flags.
    fn attribution(&self, headers: &HeaderMap) -> Attribution {
        let pick = |tunnel: &Option<String>, header: &str, flag: &Option<String>| {
            tunnel
                .clone()
                .or_else(|| header_str(headers, header).and_then(label_value))
                .or_else(|| flag.clone())
        };
        let flags = &self.shared.attribution;
        Attribution {
            team: pick(&self.identity.team, "x-llmtap-team", &flags.team),
            user: pick(&self.identity.user, "x-llmtap-user", &flags.user),
        }
    }

    async fn relay_websocket(
        &self,
        req: Request<Body>,
        route: Option<dialects::Route>,
        head: RequestHead,
    ) -> RequestOrResponse {
        let telemetry = self.shared.telemetry.clone();
        let on_open = move |_extensions: Option<&str>| -> Box<dyn websocket::MessageObserver> {
            Box::new(WsSession::new(telemetry, route, head))
        };
        let timeouts = websocket::WsTimeouts {
            response: self.shared.timeouts.response,
            stream_idle: self.shared.timeouts.stream_idle,
        };
        match websocket::relay(req, self.shared.connector.clone(), timeouts, on_open).await {
            Ok(res) => res.into(),
            Err(err) => {
                if let Some(suppressed) = self.shared.upstream_warning.allow() {
                    tracing::warn!(error = %err, suppressed, "websocket upstream failed; client gets 502");
                }
                match err {
                    websocket::WsError::Timeout(_) => status_only(StatusCode::GATEWAY_TIMEOUT),
                    websocket::WsError::Refused(refusal) => {
                        self.shared.telemetry.metrics.destination_refused(refusal);
                        destination_forbidden(refusal)
                    }
                    _ => status_only(StatusCode::BAD_GATEWAY),
                }
                .into()
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
    Some((
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase(),
        port,
    ))
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

/// A team or user name fit to be a label: trimmed, at most 64 characters of
/// `[A-Za-z0-9._@+-]`; anything else is refused rather than mangled.
fn label_value(value: &str) -> Option<String> {
    let value = value.trim();
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b));
    ok.then(|| value.to_owned())
}

/// `Proxy-Authorization: Basic base64(TEAM:USER)` (from `HTTPS_PROXY=http://TEAM:USER@…`):
/// the tunnel's team and user. The header itself is never stored or logged.
fn proxy_identity(headers: &HeaderMap) -> Attribution {
    use base64::Engine as _;
    let Some(value) = header_str(headers, "proxy-authorization") else {
        return Attribution::default();
    };
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let Some((scheme, encoded)) = value.trim().split_once(char::is_whitespace) else {
        return Attribution::default();
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Attribution::default();
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return Attribution::default();
    };
    let text = String::from_utf8_lossy(&decoded);
    let (team, user) = text.split_once(':').unwrap_or((&text, ""));
    // URL userinfo is percent-encoded by clients that build the header from `HTTPS_PROXY`.
    let decode = |s: &str| crate::config::percent_decode(s).and_then(|s| label_value(&s));
    Attribution {
        team: decode(team),
        user: decode(user),
    }
}

/// How the call is paid for, from the kind of credential only: Claude OAuth tokens
/// (`sk-ant-oat…`), ChatGPT sign-in (chatgpt.com, or a JWT bearer to OpenAI), Google
/// sign-in (Code Assist, or an OAuth `ya29.` bearer) are subscriptions; keys are API billing.
fn billing(host: &str, headers: &HeaderMap) -> Billing {
    let bearer = header_str(headers, "authorization")
        .and_then(|v| {
            v.trim()
                .strip_prefix("Bearer ")
                .or_else(|| v.trim().strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or_default();
    let host = host.to_ascii_lowercase();
    let subscription = bearer.starts_with("sk-ant-oat")
        || host == "chatgpt.com"
        || host == "cloudcode-pa.googleapis.com"
        || (host == "api.openai.com" && bearer.starts_with("eyJ"))
        || bearer.starts_with("ya29.");
    if subscription {
        Billing::Subscription
    } else {
        Billing::Api
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

/// Headers in which agents name their session: Claude Code's `X-Claude-Code-Session-Id`, the
/// Codex CLI's `session-id` (before May 2026 `session_id`, before Jan 2026 also
/// `conversation_id`), sent with every Responses call and WebSocket upgrade.
const SESSION_HEADERS: &[&str] = &[
    "x-claude-code-session-id",
    "session-id",
    "session_id",
    "conversation_id",
];

/// A client-sent session id, if it looks like one (bounded, printable, no spaces).
fn session_id(headers: &HeaderMap) -> Option<String> {
    SESSION_HEADERS
        .iter()
        .filter_map(|name| header_str(headers, name))
        .find_map(|id| {
            (!id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
                .then(|| id.to_owned())
        })
}

/// The `error_type` of a failed upstream request, from its cause chain.
fn classify(err: &ClientError) -> &'static str {
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
        if e.downcast_ref::<hudsucker::rustls::Error>().is_some() {
            return "upstream_tls";
        }
        if e.downcast_ref::<ConnectTimeout>().is_some() {
            return "upstream_timeout";
        }
        if e.downcast_ref::<DestinationRefused>().is_some() {
            return "destination_refused";
        }
    }
    if err.is_connect() {
        "upstream_connect"
    } else {
        "upstream_request"
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
                None => proxy_identity(req.headers()),
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
        let route = dialects::detect(&target);
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
        let exchange = Exchange::start(self.shared.telemetry.clone(), route, head);
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
        );
        res.map(|body| tap(idle_limit(body, idle), observer))
    }

    async fn handle_error(&mut self, _ctx: &HttpContext, err: ClientError) -> Response<Body> {
        let kind = classify(&err);
        if self.call.as_ref().is_some_and(Exchange::request_aborted) {
            // The client broke off its own upload: not an upstream failure.
            if let Some(exchange) = self.call.take() {
                exchange.upstream_failed(kind);
            }
            return status_only(StatusCode::BAD_REQUEST);
        }
        if let Some(suppressed) = self.shared.upstream_warning.allow() {
            // Debug of hyper-util's error holds the cause chain, never the URI or headers.
            tracing::warn_span!("llmtap.upstream_failure", kind).in_scope(|| {
                tracing::warn!(kind, error = ?err, suppressed, "upstream request failed; client gets 502");
            });
        }
        if let Some(exchange) = self.call.take() {
            exchange.upstream_failed(kind);
        }
        match kind {
            "upstream_timeout" => status_only(StatusCode::GATEWAY_TIMEOUT),
            "destination_refused" => {
                self.shared
                    .telemetry
                    .metrics
                    .destination_refused(Refusal::Loopback);
                status_only(StatusCode::FORBIDDEN)
            }
            _ => status_only(StatusCode::BAD_GATEWAY),
        }
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
            exchange.upstream_failed("upstream_timeout");
        }
        status_only(StatusCode::GATEWAY_TIMEOUT)
    }

    async fn connect_tunnel(
        &mut self,
        _ctx: &HttpContext,
        authority: &hudsucker::hyper::http::uri::Authority,
    ) -> std::io::Result<tokio::net::TcpStream> {
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
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
    use hudsucker::hyper::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn billing_follows_the_kind_of_credential() {
        let sub = Billing::Subscription;
        let cases = [
            (
                "api.anthropic.com",
                vec![("x-api-key", "sk-ant-api03-x")],
                Billing::Api,
            ),
            (
                "api.anthropic.com",
                vec![("authorization", "Bearer sk-ant-api03-x")],
                Billing::Api,
            ),
            (
                "api.anthropic.com",
                vec![("authorization", "Bearer sk-ant-oat01-x")],
                sub,
            ),
            (
                "api.openai.com",
                vec![("authorization", "Bearer sk-proj-x")],
                Billing::Api,
            ),
            (
                "api.openai.com",
                vec![("authorization", "Bearer eyJhbGciOi.x.y")],
                sub,
            ),
            (
                "chatgpt.com",
                vec![("authorization", "Bearer eyJ.x.y")],
                sub,
            ),
            (
                "generativelanguage.googleapis.com",
                vec![("x-goog-api-key", "AIza")],
                Billing::Api,
            ),
            (
                "cloudcode-pa.googleapis.com",
                vec![("authorization", "Bearer ya29.x")],
                sub,
            ),
        ];
        for (host, pairs, want) in cases {
            assert_eq!(billing(host, &headers(&pairs)), want, "{host} {pairs:?}");
        }
    }

    #[test]
    fn proxy_credentials_name_team_and_user() {
        let id = proxy_identity(&headers(&[(
            "proxy-authorization",
            "Basic dGVhbS1hOmFsaWNl",
        )]));
        assert_eq!(
            (id.team.as_deref(), id.user.as_deref()),
            (Some("team-a"), Some("alice"))
        );
        let only_team = proxy_identity(&headers(&[("proxy-authorization", "Basic dGVhbS1h")]));
        assert_eq!(
            (only_team.team.as_deref(), only_team.user),
            (Some("team-a"), None)
        );
        for bad in ["Bearer x", "Basic !!!"] {
            assert_eq!(
                proxy_identity(&headers(&[("proxy-authorization", bad)])),
                Attribution::default(),
                "{bad}"
            );
        }
        // `<script>:x`: the bad field is dropped (the next source applies), the good one kept.
        let mixed = proxy_identity(&headers(&[(
            "proxy-authorization",
            "Basic PHNjcmlwdD46eA==",
        )]));
        assert_eq!((mixed.team, mixed.user.as_deref()), (None, Some("x")));
    }

    #[test]
    fn label_values_are_checked_not_mangled() {
        assert_eq!(label_value(" team-a ").as_deref(), Some("team-a"));
        assert_eq!(
            label_value("bob@corp.example").as_deref(),
            Some("bob@corp.example")
        );
        for bad in ["", "two words", "<script>", &"x".repeat(65)] {
            assert_eq!(label_value(bad), None, "{bad}");
        }
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
