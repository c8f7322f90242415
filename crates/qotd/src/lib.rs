//! The quote of the day (RFC 865, traditionally port 17): each client is sent the row's
//! quote, and the connection closes; whatever the client sends is ignored.
//!
//! It is docs/ARCHITECTURE.md's worked example of adding a service: this crate, and one
//! line in the app's table of services. Its rows have a key of their own, `quote`, which
//! this crate reads and checks ([`QotdRow`]); the app never learns what it means.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use switchboard_core::{BoxError, Conn, InvalidRow, RowKeys, Service, Shutdown, Target};
use tokio::io::AsyncWriteExt;

/// A qotd row's own key: `quote = "…"`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct QotdRow {
    pub quote: String,
}

impl Default for QotdRow {
    fn default() -> Self {
        Self {
            quote: "A port is a door; a service is whoever answers it.".into(),
        }
    }
}

/// RFC 865 asks that a quote be shorter than 512 characters.
const MAX_QUOTE: usize = 511;

impl RowKeys for QotdRow {
    fn check(&self) -> Result<(), InvalidRow> {
        let length = self.quote.chars().count();
        if length == 0 || length > MAX_QUOTE {
            return Err(InvalidRow::at(
                "quote",
                format!("`quote` has {length} characters; give 1 to {MAX_QUOTE} (RFC 865)"),
            ));
        }
        Ok(())
    }

    fn target(&self) -> Option<Target> {
        Some(Target {
            key: "quote",
            value: self.quote.clone(),
        })
    }
}

/// Sends its row's quote, one line, then closes.
#[derive(Debug)]
pub struct QotdService {
    line: Vec<u8>,
}

impl QotdService {
    pub fn new(row: &QotdRow) -> Self {
        Self {
            line: format!("{}\r\n", row.quote.trim_end()).into_bytes(),
        }
    }
}

#[async_trait]
impl Service for QotdService {
    fn name(&self) -> &'static str {
        "qotd"
    }

    async fn serve(self: Arc<Self>, conn: Conn, _shutdown: Shutdown) -> Result<(), BoxError> {
        let mut stream = conn.stream;
        stream.write_all(&self.line).await?;
        stream.shutdown().await?;
        Ok(())
    }
}
