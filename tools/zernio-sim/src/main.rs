//! `zernio-sim`: serves the simulated publishing service for `make run`.

use zernio_sim::{SimConfig, Simulator};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Colour only for a person at a terminal: a log file gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt().with_target(false).with_ansi(ansi).init();
    let port = |name: &str, default: u16| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let config = SimConfig {
        api_addr: ([127, 0, 0, 1], port("SIM_PORT", 4010)).into(),
        control_addr: ([127, 0, 0, 1], port("SIM_CONTROL_PORT", 4011)).into(),
        api_key: std::env::var("PUBLISHER_API_KEY").unwrap_or_else(|_| "sk_local".into()),
    };
    let sim = Simulator::start(config).await.map_err(|e| format!("simulator: {e} (is another one running?)"))?;
    println!("publishing-service simulator: {} (control API: {}/control)", sim.api_url(), sim.control_url());
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
