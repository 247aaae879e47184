// The mistake a new axum user makes first: the layer on a router, whose routes answer
// `axum::body::Body`. It must not compile, and the error must name the way out.
use axum::routing::get;
use axum::Router;
use tower_sse::SseLayer;

async fn ticks() -> &'static str {
    "tick"
}

fn main() {
    let _app: Router = Router::new().route("/", get(ticks)).layer(SseLayer::new());
}
