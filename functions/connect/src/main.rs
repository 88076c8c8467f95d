//! `POST /projects/{projectId}/connections/{platform}/connect`: the hosted OAuth link, provisioning a profile when needed.
#![recursion_limit = "256"]

use lambda_http::{Error, Request, run, service_fn};
use shared::adapters::{aws, dynamo::DynamoStore};
use shared::handlers::connections::Connections;
use shared::{config, ports::SystemClock};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_logging();
    let sdk = aws::sdk_config().await;
    let routes = Connections {
        store: DynamoStore::new(aws::dynamodb_client(&sdk, &Default::default()), config::table_name()?),
        publisher: config::publisher()?,
        clock: SystemClock,
    };
    let routes = &routes;
    run(service_fn(move |request: Request| async move { Ok::<_, Error>(routes.connect(request).await) })).await
}
