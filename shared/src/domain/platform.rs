//! The four platforms the product publishes to, and their names on each side.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A social platform. Our API calls the last one `x`; the publishing service calls it `twitter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Instagram,
    Facebook,
    Linkedin,
    X,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown platform {0:?}: expected instagram, facebook, linkedin or x")]
pub struct UnknownPlatform(pub String);

impl Platform {
    pub const ALL: [Platform; 4] = [Platform::Instagram, Platform::Facebook, Platform::Linkedin, Platform::X];

    /// The name in our own API and in stored items.
    pub fn api_name(self) -> &'static str {
        match self {
            Platform::Instagram => "instagram",
            Platform::Facebook => "facebook",
            Platform::Linkedin => "linkedin",
            Platform::X => "x",
        }
    }

    /// The name the publishing service uses on the wire.
    pub fn wire_name(self) -> &'static str {
        match self {
            Platform::X => "twitter",
            other => other.api_name(),
        }
    }

    /// The name a person reads in a message.
    pub fn display_name(self) -> &'static str {
        match self {
            Platform::Instagram => "Instagram",
            Platform::Facebook => "Facebook",
            Platform::Linkedin => "LinkedIn",
            Platform::X => "X",
        }
    }

    /// The longest `redirect_url`, URL-encoded, the platform's connect flow takes: X's 258
    /// characters (publisher-zernio.md); the others set none.
    pub fn redirect_limit(self) -> Option<usize> {
        match self {
            Platform::X => Some(258),
            _ => None,
        }
    }

    /// Parses a platform from our API (`x`).
    pub fn from_api(name: &str) -> Result<Self, UnknownPlatform> {
        Platform::ALL.into_iter().find(|p| p.api_name() == name).ok_or_else(|| UnknownPlatform(name.to_owned()))
    }

    /// Parses a platform from the publishing service (`twitter`, also `x`), case-insensitively.
    pub fn from_wire(name: &str) -> Result<Self, UnknownPlatform> {
        let lower = name.to_ascii_lowercase();
        Platform::ALL
            .into_iter()
            .find(|p| p.wire_name() == lower || p.api_name() == lower)
            .ok_or_else(|| UnknownPlatform(name.to_owned()))
    }
}

/// "Instagram", "LinkedIn and X", "Facebook, LinkedIn and X": platforms as a person reads them.
pub fn spoken_list(platforms: &[Platform]) -> String {
    let names: Vec<&str> = platforms.iter().map(|p| p.display_name()).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.api_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_and_wire_names_round_trip_for_every_platform() {
        for p in Platform::ALL {
            assert_eq!(Platform::from_api(p.api_name()), Ok(p));
            assert_eq!(Platform::from_wire(p.wire_name()), Ok(p));
        }
        assert_eq!(Platform::from_wire("Twitter"), Ok(Platform::X));
    }

    #[test]
    fn platform_lists_read_as_a_sentence() {
        assert_eq!(spoken_list(&[Platform::Instagram]), "Instagram");
        assert_eq!(spoken_list(&[Platform::Linkedin, Platform::X]), "LinkedIn and X");
        assert_eq!(spoken_list(&[Platform::Facebook, Platform::Linkedin, Platform::X]), "Facebook, LinkedIn and X");
    }

    #[test]
    fn our_api_refuses_the_service_name_and_unknown_platforms() {
        assert!(Platform::from_api("twitter").is_err());
        assert!(Platform::from_api("tiktok").is_err());
        assert!(Platform::from_wire("tiktok").is_err());
    }
}
