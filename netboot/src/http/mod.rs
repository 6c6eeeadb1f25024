//! HTTP boot: per-machine iPXE scripts, the boot image (kernel, initramfs, signed
//! manifest) with `Range` and `Content-Length`, and the iPXE binaries for UEFI HTTP
//! boot. HTTP/1.1 through hyper; GET and HEAD only.
//!
//! | path | what |
//! |---|---|
//! | `/boot/{mac or uuid}.ipxe` | the machine's iPXE script |
//! | `/image/vmlinuz`, `/image/initramfs`, `/image/manifest` | the boot image |
//! | `/ipxe/{file}` | a file of the TFTP root (UEFI HTTP boot) |

pub mod range;
pub mod script;

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::BoxBody};
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Frame, Incoming},
    header,
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{io::AsyncSeekExt as _, net::TcpListener};

pub use range::Ranged;
pub use script::{Machine, Scripts};

use crate::{
    events::{BootEvent, EventLog, unix_now},
    manifest,
    tftp::Root,
};

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

type Body = BoxBody<Bytes, std::io::Error>;

/// What the HTTP server serves.
#[derive(Debug)]
pub struct HttpService {
    /// Script settings.
    pub scripts: Scripts,
    /// The image directory, if one is served.
    pub image: Option<Root>,
    /// The iPXE binaries (the TFTP root), if served.
    pub ipxe: Option<Root>,
    /// The boot-event log.
    pub log: EventLog,
}

impl HttpService {
    /// Serves connections from `listener` until it fails.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        let this = Arc::new(self);
        loop {
            let (stream, peer) = listener.accept().await?;
            let this = this.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let this = this.clone();
                    async move { Ok::<_, Infallible>(this.respond(req, peer).await) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), svc);
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "http connection ended");
                }
            });
        }
    }

    async fn respond(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let head = req.method() == Method::HEAD;
        if req.method() != Method::GET && !head {
            return status(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n");
        }
        let path = req.uri().path().to_owned();
        let range = req
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (resp, answered, mac) = self.route(&path, range.as_deref(), head).await;
        if path.starts_with("/boot/") || path.starts_with("/image/") || path.starts_with("/ipxe/") {
            self.log.record(&BootEvent {
                time: unix_now(),
                service: "http",
                mac: mac.clone().filter(|m| m.len() == 17),
                uuid: mac.filter(|m| m.len() == 36),
                arch: None,
                peer: Some(peer.ip()),
                asked: format!(
                    "{} {path}{}",
                    req.method(),
                    range.map(|r| format!(" ({r})")).unwrap_or_default()
                ),
                answered,
            });
        }
        resp
    }

    async fn route(
        &self,
        path: &str,
        range: Option<&str>,
        head: bool,
    ) -> (Response<Body>, String, Option<String>) {
        if let Some(rest) = path.strip_prefix("/boot/") {
            let Some(id) = rest.strip_suffix(".ipxe").and_then(script::normalise_id) else {
                return (not_found(), "404".into(), None);
            };
            let text = self.scripts.render(&id);
            let len = text.len();
            let mut r = Response::new(if head { empty() } else { full(text) });
            set(&mut r, header::CONTENT_TYPE, "text/plain; charset=utf-8");
            set(&mut r, header::CONTENT_LENGTH, &len.to_string());
            set(&mut r, header::CACHE_CONTROL, "no-store");
            return (r, format!("script ({len} bytes)"), Some(id));
        }
        let (root, name) = if let Some(name) = path.strip_prefix("/image/") {
            if ![manifest::KERNEL, manifest::INITRAMFS, manifest::MANIFEST].contains(&name) {
                return (not_found(), "404".into(), None);
            }
            (self.image.as_ref(), name)
        } else if let Some(name) = path.strip_prefix("/ipxe/") {
            (self.ipxe.as_ref(), name)
        } else {
            return (not_found(), "404".into(), None);
        };
        let Some(root) = root else {
            return (not_found(), "404 (not served)".into(), None);
        };
        let (resp, answered) = file(root, name, range, head).await;
        (resp, answered, None)
    }
}

/// Serves one file with `Content-Length`, `Accept-Ranges` and single ranges.
async fn file(
    root: &Root,
    name: &str,
    range: Option<&str>,
    head: bool,
) -> (Response<Body>, String) {
    let (f, size) = match root.open(name) {
        Ok(x) => x,
        Err(crate::tftp::PathError::NotFound(_)) => return (not_found(), "404".into()),
        Err(e) => {
            return (
                status(StatusCode::FORBIDDEN, "Forbidden\n"),
                format!("403: {e}"),
            );
        }
    };
    let (code, start, len) = match range::parse(range, size) {
        Ranged::Full => (StatusCode::OK, 0, size),
        Ranged::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Ranged::Unsatisfiable => {
            let mut r = status(StatusCode::RANGE_NOT_SATISFIABLE, "");
            set(&mut r, header::CONTENT_RANGE, &format!("bytes */{size}"));
            return (r, "416".into());
        }
    };
    let body = if head {
        empty()
    } else {
        let mut f = tokio::fs::File::from_std(f);
        if let Err(e) = f.seek(std::io::SeekFrom::Start(start)).await {
            return (
                status(StatusCode::INTERNAL_SERVER_ERROR, "Read error\n"),
                format!("500: {e}"),
            );
        }
        use tokio::io::AsyncReadExt as _;
        let stream =
            tokio_util::io::ReaderStream::with_capacity(f.take(len), 64 * 1024).map_ok(Frame::data);
        StreamBody::new(stream).boxed()
    };
    let mut r = Response::new(body);
    *r.status_mut() = code;
    set(&mut r, header::CONTENT_LENGTH, &len.to_string());
    set(&mut r, header::ACCEPT_RANGES, "bytes");
    set(&mut r, header::CONTENT_TYPE, "application/octet-stream");
    if code == StatusCode::PARTIAL_CONTENT {
        set(
            &mut r,
            header::CONTENT_RANGE,
            &format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    (r, format!("{} {len} of {size} bytes", code.as_u16()))
}

fn set(r: &mut Response<Body>, name: header::HeaderName, value: &str) {
    if let Ok(v) = header::HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

fn full(text: String) -> Body {
    Full::new(Bytes::from(text))
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn empty() -> Body {
    full(String::new())
}

fn status(code: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(full(text.to_owned()));
    *r.status_mut() = code;
    r
}

fn not_found() -> Response<Body> {
    status(StatusCode::NOT_FOUND, "Not found\n")
}
