//! The library every function links: the pure domain, the ports the handlers need, the adapters
//! that speak DynamoDB, SQS and the publishing service, and one handler per job.

pub mod domain;
pub mod wire;
pub mod adapters;
pub mod ports;
pub mod config;
pub mod handlers;
pub mod signature;
