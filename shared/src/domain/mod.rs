//! The pure core: no I/O, no async, no AWS or HTTP types.

pub mod budget;
pub mod connection;
pub mod erasure;
pub mod event;
pub mod healing;
pub mod history;
pub mod ids;
pub mod limits;
pub mod media;
pub mod platform;
pub mod post;
pub mod publish;
pub mod refresh;
pub mod stored;
pub mod subscription;
pub mod text;
pub mod time;

pub use connection::{Connection, ConnectionStatus};
pub use ids::{AccountId, EventId, InvalidId, PostId, ProfileId, ProjectId, ServicePostId};
pub use platform::{Platform, UnknownPlatform};
pub use post::{EntryStatus, Generation, PlatformEntry, PostReport, PostState, PostStatus, ShownStatus};
pub use time::Timestamp;
