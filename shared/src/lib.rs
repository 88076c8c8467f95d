//! The library every function links: the pure domain, the ports the handlers need, the adapters
//! that speak DynamoDB, SQS and the publishing service, and one handler per job.

pub mod adapters;
pub mod config;
pub mod deadline;
pub mod domain;
pub mod handlers;
pub mod metrics;
pub mod ports;
pub mod reloading;
pub mod signature;
pub mod wiring;
