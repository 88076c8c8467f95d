//! Points in time: RFC 3339 UTC on every wire and in every item.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// A UTC instant, ordered, printed as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

/// How far a claimed evidence time may run ahead of the receiving clock before it is not believed.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;

impl From<OffsetDateTime> for Timestamp {
    fn from(t: OffsetDateTime) -> Self {
        Self(t.to_offset(UtcOffset::UTC))
    }
}

/// The time evidence is taken to be from: what it claims, unless that is later than the receiving
/// clock plus the allowed skew (or absent): then the clock, so a wrong time cannot pin a record.
pub fn evidence_time(claimed: Option<Timestamp>, clock: Timestamp) -> Timestamp {
    match claimed {
        Some(t) if t <= clock.plus_seconds(MAX_CLOCK_SKEW_SECONDS) => t,
        _ => clock,
    }
}

impl Timestamp {
    pub fn from_unix(seconds: i64) -> Self {
        Self(OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH))
    }

    /// Parses RFC 3339 with any offset (normalised to UTC); `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        OffsetDateTime::parse(raw, &Rfc3339).ok().map(|t| Self(t.to_offset(UtcOffset::UTC)))
    }

    pub fn unix(self) -> i64 {
        self.0.unix_timestamp()
    }

    pub fn from_unix_millis(ms: i64) -> Self {
        let nanos = i128::from(ms) * 1_000_000;
        Self(OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH))
    }

    pub fn unix_millis(self) -> i64 {
        i64::try_from(self.0.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }

    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(time::Duration::seconds(seconds)))
    }

    pub fn to_rfc3339(self) -> String {
        self.0.format(&Rfc3339).unwrap_or_default()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Timestamp::parse(&raw).ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {raw:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_service_times_with_and_without_fractions_and_offsets() {
        let a = Timestamp::parse("2026-03-01T10:00:00Z").unwrap();
        let b = Timestamp::parse("2026-03-01T11:00:00.000+01:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_rfc3339(), "2026-03-01T10:00:00Z");
        assert!(Timestamp::parse("yesterday").is_none());
    }

    #[test]
    fn a_claimed_time_far_in_the_future_is_taken_as_the_clock() {
        let clock = Timestamp::from_unix(1_000_000);
        assert_eq!(evidence_time(Some(clock.plus_seconds(300)), clock), clock.plus_seconds(300));
        assert_eq!(evidence_time(Some(clock.plus_seconds(301)), clock), clock);
        assert_eq!(evidence_time(Some(clock.plus_seconds(-50)), clock), clock.plus_seconds(-50));
        assert_eq!(evidence_time(None, clock), clock);
    }
}
