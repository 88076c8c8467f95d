//! The only places AWS SDK and HTTP client types appear; SDK errors become domain outcomes here.

pub mod aws;
pub mod dynamo;
pub mod eventbridge;
pub mod secrets;
pub mod sqs;
pub mod xray;
pub mod zernio;
