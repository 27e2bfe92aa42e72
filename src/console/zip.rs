//! Placeholder: the streamed zip download arrives in the next commit.

use std::sync::Arc;

use warp::http::Response;
use warp::hyper::Body;

use super::{Call, Console, ConsoleError};

/// `POST api/zip` (not yet served).
pub async fn download(
    _console: &Arc<Console>,
    _call: &Call,
) -> Result<Response<Body>, ConsoleError> {
    Err(ConsoleError::NotFound)
}
