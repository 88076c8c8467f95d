//! One module per job. Each takes its ports and a request and returns a response; the Lambda
//! binaries and the dev gateway call exactly these.

pub mod app;
pub mod budget;
pub mod change_feed;
pub mod connections;
pub mod erasure;
pub mod events;
pub mod history;
pub mod http;
pub mod posts;
pub mod publishing;
pub mod reconciler;
pub mod retry;
pub mod webhook;
