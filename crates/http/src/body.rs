//! What a request body may cost: time and memory. Neither of hyper's clocks runs while a body
//! arrives (the head has come, and a request is in progress), so a client trickling a body a
//! byte at a time would hold its connection as long as it liked; and each port's connections
//! may each send `max_body_bytes`. So every body that routes may read passes through
//! [`Guard`]:
//!
//! - **Pace.** A body gets `[http] body_grace`, and one more second for each
//!   `[http] min_body_rate` bytes it has delivered; only time spent waiting for the client
//!   counts (not time the handler took before reading on). Slower, and the request is
//!   answered `408 Request Timeout` and the connection closed.
//! - **Memory.** Its bytes are charged to the connection's budget
//!   (`[supervisor] max_buffered_bytes`, shared by every connection) until the request is
//!   answered; a body that finds the budget spent is answered `503` with `Retry-After`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use hyper::body::{Body as _, Frame, SizeHint};
use switchboard_core::Claim;
use switchboard_web::Connection;
use tokio::time::{Instant, Sleep};

use crate::HttpSettings;

/// The pace a body must keep.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace {
    /// Bytes a second, once the grace period is spent.
    pub(crate) min_rate: u64,
    pub(crate) grace: Duration,
}

impl Pace {
    pub(crate) fn of(settings: &HttpSettings) -> Self {
        Self {
            min_rate: settings.min_body_rate,
            grace: settings.body_grace,
        }
    }

    /// How long a body that delivered `received` bytes may have kept the reader waiting.
    fn allowance(&self, received: u64) -> Duration {
        self.grace + Duration::from_secs_f64(received as f64 / self.min_rate as f64)
    }
}

/// Why a body was cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    TooSlow,
    NoRoom,
}

/// The layer for the routes that may read a body: the body is paced and charged, and a
/// request whose body was cut off is answered for it, whatever its handler made of the
/// error. A request without a body passes straight through (no allocation: `/get` pays
/// nothing for it).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Guard(pub(crate) Pace);

impl<S> tower::Layer<S> for Guard {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Guarded<S> {
        Guarded {
            inner,
            pace: self.0,
        }
    }
}

/// A service behind [`Guard`].
#[derive(Clone, Debug)]
pub(crate) struct Guarded<S> {
    inner: S,
    pace: Pace,
}

impl<S, B> tower::Service<http::Request<B>> for Guarded<S>
where
    S: tower::Service<Request, Response = Response>,
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The route would box the body if this did not (`Body::new`): no extra cost.
        let request = request.map(Body::new);
        let buffers = match request.body().is_end_stream() {
            true => None,
            false => request
                .extensions()
                .get::<Arc<Connection>>()
                .map(|connection| connection.buffers.clone()),
        };
        let Some(buffers) = buffers else {
            return Answer {
                inner: self.inner.call(request),
                watch: None,
            };
        };
        let claim = Arc::new(buffers.claim());
        let cut = Arc::new(OnceLock::new());
        let pace = self.pace;
        let request = request.map(|body| {
            Body::new(Paced {
                inner: body,
                pace,
                received: 0,
                waited: Duration::ZERO,
                waiting_since: None,
                timer: None,
                claim: claim.clone(),
                cut: cut.clone(),
            })
        });
        Answer {
            inner: self.inner.call(request),
            watch: Some(Watch { pace, claim, cut }),
        }
    }
}

/// What a guarded request's answer waits on besides its handler.
#[derive(Debug)]
struct Watch {
    pace: Pace,
    /// The body's bytes count until the handler has answered, whether it kept them or not.
    claim: Arc<Claim>,
    cut: Arc<OnceLock<Cut>>,
}

pin_project_lite::pin_project! {
    /// The handler's answer, replaced by the guard's when the body was cut off.
    pub(crate) struct Answer<F> {
        #[pin]
        inner: F,
        watch: Option<Watch>,
    }
}

impl<F, E> Future for Answer<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.inner.poll(cx))?;
        let Some(watch) = this.watch.take() else {
            return Poll::Ready(Ok(response));
        };
        drop(watch.claim);
        Poll::Ready(Ok(match watch.cut.get() {
            None => response,
            Some(&why) => cut_answer(why, watch.pace),
        }))
    }
}

/// The answer to a request whose body was cut off.
fn cut_answer(why: Cut, pace: Pace) -> Response {
    match why {
        Cut::TooSlow => closing(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "408 the request body came slower than [http] min_body_rate ({} bytes a \
                 second after the first {}s)\n",
                pace.min_rate,
                pace.grace.as_secs_f64()
            ),
        ),
        Cut::NoRoom => {
            let mut response = closing(
                StatusCode::SERVICE_UNAVAILABLE,
                "503 request bodies being received fill [supervisor] max_buffered_bytes; \
                 try again later\n"
                    .to_owned(),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}

/// An answer after which the connection closes: the rest of the body is not read.
fn closing(status: StatusCode, text: String) -> Response {
    let mut response = (status, text).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request body held to its pace and charged to the budget.
struct Paced {
    inner: Body,
    pace: Pace,
    received: u64,
    /// Time spent waiting for the client so far.
    waited: Duration,
    /// Since when the reader has been waiting, while it waits.
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    claim: Arc<Claim>,
    cut: Arc<OnceLock<Cut>>,
}

impl hyper::body::Body for Paced {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_frame(cx);
        if !poll.is_pending()
            && let Some(since) = this.waiting_since.take()
        {
            this.waited += since.elapsed();
        }
        match poll {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    if !this.claim.take(data.len()) {
                        return cut_off(&this.cut, Cut::NoRoom);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                let now = Instant::now();
                let since = *this.waiting_since.get_or_insert(now);
                let left = this
                    .pace
                    .allowance(this.received)
                    .saturating_sub(this.waited);
                let deadline = since + left;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => cut_off(&this.cut, Cut::TooSlow),
                    Poll::Pending => Poll::Pending,
                }
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn cut_off(
    cut: &OnceLock<Cut>,
    why: Cut,
) -> Poll<Option<Result<Frame<bytes::Bytes>, axum::Error>>> {
    let _ = cut.set(why);
    let error = match why {
        Cut::TooSlow => io::Error::new(io::ErrorKind::TimedOut, "[http] min_body_rate"),
        Cut::NoRoom => io::Error::new(io::ErrorKind::OutOfMemory, "max_buffered_bytes"),
    };
    Poll::Ready(Some(Err(axum::Error::new(error))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_earns_a_second_per_min_rate_bytes_after_its_grace() {
        let pace = Pace {
            min_rate: 1000,
            grace: Duration::from_secs(10),
        };
        assert_eq!(pace.allowance(0), Duration::from_secs(10));
        assert_eq!(pace.allowance(5000), Duration::from_secs(15));
        assert_eq!(pace.allowance(500), Duration::from_millis(10_500));
    }
}
