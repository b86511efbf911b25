//! Timestamps as people and Kubernetes write them: RFC 3339 in UTC (`2026-11-25T18:24:01Z`),
//! through `jiff` (the timestamp type k8s-openapi's `Time`/`MicroTime` carry too).

use jiff::Timestamp;
use std::time::SystemTime;

/// A system time as a timestamp (times outside jiff's range, years beyond ±9999, clamp).
pub fn timestamp(t: SystemTime) -> Timestamp {
    Timestamp::try_from(t).unwrap_or(if t < SystemTime::UNIX_EPOCH {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// Formats a time as RFC 3339 (UTC, whole seconds).
pub fn rfc3339(t: SystemTime) -> String {
    let ts = timestamp(t);
    Timestamp::from_second(ts.as_second())
        .unwrap_or(ts)
        .to_string()
}

/// RFC 3339 with milliseconds (`2024-05-01T12:00:00.250Z`): events come faster than seconds.
pub fn rfc3339_ms(t: SystemTime) -> String {
    format!("{:.3}", timestamp(t))
}

/// Parses an RFC 3339 timestamp (any offset, any fraction).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    s.parse::<Timestamp>().ok().map(SystemTime::from)
}

/// `#[serde(with = "crate::api::time::opt_rfc3339")]` for `Option<SystemTime>`.
pub mod opt_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::rfc3339(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.and_then(|s| super::parse_rfc3339(&s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_and_parses_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_631_148);
        let s = rfc3339(t);
        assert_eq!(s, "2026-11-25T18:25:48Z");
        assert_eq!(parse_rfc3339(&s), Some(t));
        assert_eq!(rfc3339(t + Duration::from_millis(999)), s);
        assert_eq!(
            rfc3339_ms(t + Duration::from_millis(250)),
            "2026-11-25T18:25:48.250Z"
        );
        assert_eq!(rfc3339_ms(t), "2026-11-25T18:25:48.000Z");
        assert_eq!(
            parse_rfc3339("2000-02-29T12:00:00Z")
                .map(rfc3339)
                .as_deref(),
            Some("2000-02-29T12:00:00Z")
        );
        assert_eq!(parse_rfc3339("2000-02-30T12:00:00Z"), None);
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
