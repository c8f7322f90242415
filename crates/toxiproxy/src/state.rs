//! What Toxiproxy's API works with: the port table, to list and add proxies, and the ports'
//! toxics.

use std::sync::Arc;

use switchboard_core::{PortControl, PortDirectory};
use switchboard_faults::ToxicControl;

/// Toxiproxy's API over switchboard's port table. Cloning is cheap.
#[derive(Clone)]
pub struct ToxiproxyApi(pub(crate) AppState);

pub(crate) type AppState = Arc<Inner>;

pub(crate) struct Inner {
    pub(crate) ports: Arc<dyn PortDirectory>,
    pub(crate) control: Arc<dyn PortControl>,
    pub(crate) toxics: Arc<dyn ToxicControl>,
}

impl ToxiproxyApi {
    pub fn new(
        ports: Arc<dyn PortDirectory>,
        control: Arc<dyn PortControl>,
        toxics: Arc<dyn ToxicControl>,
    ) -> Self {
        Self(Arc::new(Inner {
            ports,
            control,
            toxics,
        }))
    }
}

impl std::fmt::Debug for ToxiproxyApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToxiproxyApi").finish_non_exhaustive()
    }
}
