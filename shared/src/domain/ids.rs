//! Identifiers, parsed once at the edge so that code past it never re-checks strings.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be 1-{max} characters of {allowed}")]
pub struct InvalidId {
    pub what: &'static str,
    pub max: usize,
    pub allowed: &'static str,
}

fn is_app_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Service ids and event ids are opaque; they only have to be printable and bounded.
fn is_opaque_id_char(c: char) -> bool {
    c.is_ascii_graphic()
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal, $check:path, $allowed:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: impl Into<String>) -> Result<Self, InvalidId> {
                let raw = raw.into();
                if raw.is_empty() || raw.len() > $max || !raw.chars().all($check) {
                    return Err(InvalidId { what: $what, max: $max, allowed: $allowed });
                }
                Ok(Self(raw))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(raw: String) -> Result<Self, InvalidId> {
                Self::parse(raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A theStacc project (tenant); comes from the verified token or the service's echoed metadata.
    ProjectId, "a project id", 128, is_app_id_char, "A-Z a-z 0-9 _ -"
);
id_type!(
    /// A theStacc post.
    PostId, "a post id", 128, is_app_id_char, "A-Z a-z 0-9 _ -"
);
id_type!(
    /// A webhook event id, stable across the service's redeliveries.
    EventId, "an event id", 256, is_opaque_id_char, "printable ASCII"
);
id_type!(
    /// A profile on the publishing service (one per project).
    ProfileId, "a profile id", 128, is_opaque_id_char, "printable ASCII"
);
id_type!(
    /// A post on the publishing service: one generation of our post.
    ServicePostId, "a service post id", 128, is_opaque_id_char, "printable ASCII"
);
id_type!(
    /// A social account on the publishing service (one platform's login under a profile).
    AccountId, "an account id", 128, is_opaque_id_char, "printable ASCII"
);

/// The name of a project's profile on the service: derived from the project id, so a retried
/// create finds the first one, and unique even where the service compares names without case
/// (`h` is the first 8 hex digits of SHA-256 of the id, so `Acme` and `acme` differ).
pub fn profile_name(project: &ProjectId) -> String {
    use sha2::{Digest, Sha256};
    let h = hex::encode(&Sha256::digest(project.as_str().as_bytes())[..4]);
    format!("stacc-{project}-{h}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_accept_the_documented_alphabet_only() {
        assert!(ProjectId::parse("proj_A-9").is_ok());
        assert!(ProjectId::parse("").is_err());
        assert!(ProjectId::parse("a/b").is_err());
        assert!(PostId::parse("x".repeat(128)).is_ok());
        assert!(PostId::parse("x".repeat(129)).is_err());
        assert!(PostId::parse("é").is_err());
    }

    #[test]
    fn profile_names_differ_for_ids_that_differ_only_in_case() {
        let (upper, lower) = (ProjectId::parse("Acme").unwrap(), ProjectId::parse("acme").unwrap());
        assert_eq!(profile_name(&lower), "stacc-acme-822b33ad");
        assert!(!profile_name(&upper).eq_ignore_ascii_case(&profile_name(&lower)));
        assert_eq!(profile_name(&lower), profile_name(&ProjectId::parse("acme").unwrap()), "stable");
    }

    #[test]
    fn opaque_ids_refuse_spaces_and_control_characters() {
        assert!(EventId::parse("evt_65f1#ab").is_ok());
        assert!(EventId::parse("evt 1").is_err());
        assert!(EventId::parse("evt\n").is_err());
        // Ids from the service: empty or over 128 bytes is a malformed answer.
        assert!(AccountId::parse("a".repeat(128)).is_ok());
        assert!(AccountId::parse("a".repeat(129)).is_err());
        assert!(ServicePostId::parse("").is_err());
        assert!(ServicePostId::parse("p".repeat(129)).is_err());
    }
}
