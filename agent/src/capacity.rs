//! Capacity units offered to the grid (CRU, MRU, SRU, HRU) minus the system
//! reservation. Filled by the inventory work.

use serde::Serialize;

/// Capacity offered to the grid.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Capacity {}
