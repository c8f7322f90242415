//! The two clocks every connection's stream keeps, whatever its protocol: a write that makes
//! no progress for `write_timeout` (a client that never reads what it asked for) and, for
//! services without timeouts of their own, a connection with no bytes either way for
//! `idle_timeout`. Either ends the connection with a `TimedOut` error from the stream, which
//! the service sees as it would a reset.
//!
//! Both cost nothing while bytes flow: a timer is made the first time the socket makes a
//! read or write wait, and kept for the next wait.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// The limits a stream holds its connection to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// A write that cannot hand the kernel a single byte for this long ends the connection.
    pub write_timeout: Duration,
    /// No byte read and none written for this long ends the connection; `None` for
    /// protocols that keep their own clocks (HTTP, SMTP).
    pub idle_timeout: Option<Duration>,
}

/// The clocks of one stream.
#[derive(Debug)]
pub(crate) struct Clocks {
    limits: Deadlines,
    /// When a byte last went either way (only kept when there is an idle timeout).
    last_progress: Instant,
    /// Armed while a write waits; reused for the next wait.
    write: Option<Pin<Box<Sleep>>>,
    write_armed: bool,
    /// Armed while a read waits.
    idle: Option<Pin<Box<Sleep>>>,
}

impl Clocks {
    pub(crate) fn new(limits: Deadlines) -> Self {
        Self {
            limits,
            last_progress: Instant::now(),
            write: None,
            write_armed: false,
            idle: None,
        }
    }

    /// Note what a read did; while it waits, run the idle clock.
    pub(crate) fn on_read(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<()>>,
        read: usize,
    ) -> Poll<io::Result<()>> {
        let Some(idle) = self.limits.idle_timeout else {
            return poll;
        };
        match poll {
            Poll::Ready(Ok(())) if read > 0 => {
                self.last_progress = Instant::now();
                poll
            }
            Poll::Pending => {
                let deadline = self.last_progress + idle;
                let timer = self
                    .idle
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "no byte either way for {} (idle_timeout)",
                            humantime::format_duration(idle)
                        ),
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
            ready => ready,
        }
    }

    /// Note what a write did; while the socket takes nothing, run the write clock. A write
    /// that a toxic holds back (`held`) is the toxic's to time, not a stall.
    pub(crate) fn on_write(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<usize>>,
        held: bool,
    ) -> Poll<io::Result<usize>> {
        match poll {
            Poll::Ready(Ok(n)) if n > 0 => {
                self.write_armed = false;
                if self.limits.idle_timeout.is_some() {
                    self.last_progress = Instant::now();
                }
                poll
            }
            Poll::Pending if held => {
                self.write_armed = false;
                Poll::Pending
            }
            Poll::Pending => {
                let limit = self.limits.write_timeout;
                if !self.write_armed {
                    let deadline = Instant::now() + limit;
                    match &mut self.write {
                        Some(timer) => timer.as_mut().reset(deadline),
                        None => self.write = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                    self.write_armed = true;
                }
                let Some(timer) = self.write.as_mut() else {
                    return Poll::Pending;
                };
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "the client took no byte for {} (write_timeout)",
                            humantime::format_duration(limit)
                        ),
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
            ready => ready,
        }
    }
}
