//! `fault-proxy <listen address> <upstream url>`: the proxy as its own process, in front of any
//! DynamoDB endpoint. FAULTS (`throttle:0.1,lost_answer:0.02,...`), FAULT_SEED, FAULT_DELAY_MS.

use fault_proxy::{FaultProxy, Faults};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        return Err("usage: fault-proxy 127.0.0.1:8001 http://127.0.0.1:8000".into());
    };
    let listen = listen.parse().map_err(|_| format!("{listen} is not an address:port"))?;
    let (faults, seed) = fault_proxy::from_env()?.unwrap_or((Faults::none(), 0));
    let proxy = FaultProxy::start(listen, &upstream, faults.clone(), seed).await.map_err(|e| e.to_string())?;
    println!("fault proxy {} -> {upstream}, seed {seed}, faults {:?}", proxy.endpoint(), faults.rules);
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    println!("{}", proxy.stats().to_json());
    Ok(())
}
