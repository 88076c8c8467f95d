//! DynamoDB on one machine: dynoxide, embedded, serving the real wire protocol on loopback.

use std::net::SocketAddr;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running emulator; `stop` closes its port (the data stays in `db`), `serve` again reopens it.
pub struct LocalDynamo {
    pub db: dynoxide::Database,
    pub addr: SocketAddr,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl LocalDynamo {
    /// An in-memory emulator on a free loopback port (tests).
    pub async fn memory() -> std::io::Result<Self> {
        let db = dynoxide::Database::memory().map_err(std::io::Error::other)?;
        Self::serve(db, "127.0.0.1:0".parse().expect("a loopback address")).await
    }

    /// An emulator keeping its data in a SQLite file, so a restart loses nothing.
    pub async fn file(path: &str, addr: SocketAddr) -> std::io::Result<Self> {
        let db = dynoxide::Database::new(path).map_err(std::io::Error::other)?;
        Self::serve(db, addr).await
    }

    pub async fn serve(db: dynoxide::Database, addr: SocketAddr) -> std::io::Result<Self> {
        let mut this = Self { db, addr, running: None };
        this.start().await?;
        Ok(this)
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// (Re)opens the port with the same data.
    pub async fn start(&mut self) -> std::io::Result<()> {
        if self.running.is_some() {
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        self.addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let db = self.db.clone();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            if let Err(e) = dynoxide::server::serve_with_shutdown(listener, db, shutdown).await {
                tracing::error!(error = %e, "embedded DynamoDB stopped");
            }
        });
        self.running = Some((tx, task));
        Ok(())
    }

    /// Closes the port, as if the database were unreachable.
    pub async fn stop(&mut self) {
        if let Some((tx, task)) = self.running.take() {
            let _ = tx.send(());
            // Graceful shutdown closes idle keep-alive connections too, so clients see it down.
            let abort = task.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(2), task).await.is_err() {
                abort.abort();
            }
        }
    }
}
