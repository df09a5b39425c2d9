//! The floor for `scripts/bench`: the least an HTTP server on this machine
//! can do per request. A minimal hyper server on the same runtime set-up
//! as wapulse (tokio multi-thread, HTTP/1.1) that answers every request
//! with a fixed JSON body read from a file (the size of a real
//! `/session/health` answer). wapulse's read throughput is reported as a
//! ratio of this.
//!
//! `floor PORT BODY_FILE` serves on 127.0.0.1:PORT until killed. Run by
//! `scripts/bench`; it is a server, not a criterion benchmark.

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let (Some(port), Some(file)) = (args.next(), args.next()) else {
        eprintln!("usage: floor PORT BODY_FILE (scripts/bench runs it)");
        std::process::exit(2);
    };
    let port: u16 = port.parse().expect("PORT must be a port number");
    let body = Bytes::from(std::fs::read(&file).expect("BODY_FILE must be readable"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move {
                        let mut r = Response::new(Full::new(body));
                        r.headers_mut()
                            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
