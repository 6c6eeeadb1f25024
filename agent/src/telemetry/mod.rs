//! Telemetry: a sampler and a bounded in-memory history. Filled by the telemetry work.
