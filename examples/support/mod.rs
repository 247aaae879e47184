//! What the examples' servers do alike: logging, the address to listen on, and hyper's
//! accept loop. Each example's own file keeps what it shows: its routes and its stream.

// Each example uses the part it needs.
#![allow(dead_code)]

use std::convert::Infallible;
use std::error::Error as StdError;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::Service;

/// Logs to stderr at `info`, or as `RUST_LOG` says.
pub(crate) fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
}

/// Binds the address given as the first argument, else in the variable `env`, else
/// `default`.
pub(crate) async fn listen(env: &str, default: &str) -> std::io::Result<TcpListener> {
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var(env).ok())
        .unwrap_or_else(|| default.to_owned());
    let listener = TcpListener::bind(&addr).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    Ok(listener)
}

/// Serves `app` on every connection `listener` accepts, over HTTP/1.1 or HTTP/2, until the
/// task is dropped.
pub(crate) async fn serve<S, B>(listener: TcpListener, app: S)
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Typically out of file descriptors: other connections still need serving,
                // and a short pause lets some close instead of spinning on the same error.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let connection = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), service)
                .await;
            if let Err(error) = connection {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}
