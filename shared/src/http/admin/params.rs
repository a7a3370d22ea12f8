//! Query-string parsing for the admin API. Every invalid value becomes a 400
//! `invalid_parameter` error whose detail names the parameter.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};

use super::super::error::ApiError;
use crate::model::EventStatus;
use crate::storage::EventFilter;

/// Builds the 400 error for one parameter.
pub fn invalid(name: &str, detail: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("invalid_parameter", format!("{name}: {detail}"))
}

/// The decoded query parameters of one request. An empty value counts as absent.
#[derive(Debug, Default)]
pub struct Query {
    values: BTreeMap<String, String>,
}

impl Query {
    /// Decodes `raw` and rejects parameters outside `accepted` and repeated parameters.
    pub fn parse(raw: Option<&str>, accepted: &[&str]) -> Result<Query, ApiError> {
        let mut values = BTreeMap::new();
        for (name, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !accepted.contains(&name.as_ref()) {
                let accepted = if accepted.is_empty() {
                    "this route takes no parameters".to_string()
                } else {
                    format!("accepted parameters are {}", accepted.join(", "))
                };
                return Err(invalid(&name, format!("unknown parameter; {accepted}")));
            }
            if values
                .insert(name.to_string(), value.trim().to_string())
                .is_some()
            {
                return Err(invalid(&name, "given more than once"));
            }
        }
        Ok(Query { values })
    }

    /// Returns a text value, or `None` when it is absent or empty.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// Parses a whole number of at least `min`.
    pub fn integer(&self, name: &str, min: i64) -> Result<Option<i64>, ApiError> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        let value: i64 = text
            .parse()
            .map_err(|_| invalid(name, format!("{text:?} is not a whole number")))?;
        if value < min {
            return Err(invalid(
                name,
                format!("{value} is below the minimum of {min}"),
            ));
        }
        Ok(Some(value))
    }

    /// Parses a comma-separated list of event statuses.
    pub fn statuses(&self, name: &str) -> Result<Vec<EventStatus>, ApiError> {
        let Some(text) = self.text(name) else {
            return Ok(Vec::new());
        };
        text.split(',')
            .map(|part| {
                EventStatus::parse(part.trim()).ok_or_else(|| {
                    let known: Vec<&str> = EventStatus::ALL.iter().map(|s| s.as_str()).collect();
                    invalid(
                        name,
                        format!("unknown status {part:?}; expected {}", known.join(", ")),
                    )
                })
            })
            .collect()
    }

    /// Parses an inclusive lower time bound: a bare date is the start of that UTC day.
    pub fn from_date(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        match parse_date_or_time(name, text)? {
            DateOrTime::Date(date) => Ok(Some(date.and_time(chrono::NaiveTime::MIN).and_utc())),
            DateOrTime::Time(time) => Ok(Some(time.trunc_subsecs(6))),
        }
    }

    /// Parses an inclusive upper time bound and returns the exclusive bound the store
    /// expects: a bare date includes that whole UTC day, and a time includes that instant
    /// (stored times have microsecond precision, so the bound is one microsecond later).
    pub fn to_date(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        let end = match parse_date_or_time(name, text)? {
            DateOrTime::Date(date) => date
                .succ_opt()
                .map(|next| next.and_time(chrono::NaiveTime::MIN).and_utc()),
            DateOrTime::Time(time) => time
                .trunc_subsecs(6)
                .checked_add_signed(chrono::Duration::microseconds(1)),
        };
        end.map(Some)
            .ok_or_else(|| invalid(name, format!("{text:?} is out of range")))
    }
}

enum DateOrTime {
    Date(NaiveDate),
    Time(DateTime<Utc>),
}

fn parse_date_or_time(name: &str, text: &str) -> Result<DateOrTime, ApiError> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(DateOrTime::Date(date));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|time| DateOrTime::Time(time.with_timezone(&Utc)))
        .map_err(|_| {
            invalid(
                name,
                format!(
                    "{text:?} is not a date (2024-01-31) or an RFC 3339 time \
                     (2024-01-31T10:30:00Z)"
                ),
            )
        })
}

/// Builds the event filter shared by statistics, listing and retry from the parameters
/// `provider`, `eventType`, `fromDate`, `toDate` and, when `with_status`, `status`.
pub fn event_filter(query: &Query, with_status: bool) -> Result<EventFilter, ApiError> {
    let filter = EventFilter {
        provider: query.text("provider").map(str::to_string),
        event_type: query.text("eventType").map(str::to_string),
        statuses: if with_status {
            query.statuses("status")?
        } else {
            Vec::new()
        },
        from: query.from_date("fromDate")?,
        to: query.to_date("toDate")?,
    };
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from >= to
    {
        return Err(invalid("toDate", "must not be before fromDate"));
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(raw: &str) -> Query {
        Query::parse(
            Some(raw),
            &["provider", "status", "fromDate", "toDate", "page"],
        )
        .expect("valid query")
    }

    fn detail(error: ApiError) -> String {
        assert_eq!(error.code, "invalid_parameter");
        error.detail
    }

    #[test]
    fn bare_dates_cover_whole_days() {
        let query = query("fromDate=2024-01-01&toDate=2024-01-31");
        let filter = event_filter(&query, false).unwrap();
        assert_eq!(
            filter.from.unwrap().to_rfc3339(),
            "2024-01-01T00:00:00+00:00"
        );
        assert_eq!(filter.to.unwrap().to_rfc3339(), "2024-02-01T00:00:00+00:00");
    }

    #[test]
    fn rfc3339_upper_bound_includes_instant() {
        let query = query("toDate=2024-01-31T10:30:00%2B02:00");
        let to = query.to_date("toDate").unwrap().unwrap();
        assert_eq!(
            to,
            "2024-01-31T08:30:00.000001Z"
                .parse::<DateTime<Utc>>()
                .unwrap()
        );
    }

    #[test]
    fn reversed_range_names_to_date() {
        let query = query("fromDate=2024-02-01&toDate=2024-01-01");
        let error = event_filter(&query, false).unwrap_err();
        assert!(detail(error).starts_with("toDate:"));
    }

    #[test]
    fn invalid_values_name_parameter() {
        let cases = [
            ("status=finished", "status"),
            ("status=failed,nope", "status"),
            ("fromDate=2024-13-01", "fromDate"),
            ("toDate=yesterday", "toDate"),
        ];
        for (raw, name) in cases {
            let error = event_filter(&query(raw), true).unwrap_err();
            assert!(detail(error).starts_with(&format!("{name}:")), "{raw}");
        }
        let error = query("page=two").integer("page", 1).unwrap_err();
        assert!(detail(error).starts_with("page:"));
        let error = query("page=0").integer("page", 1).unwrap_err();
        assert!(detail(error).contains("minimum of 1"));
    }

    #[test]
    fn unknown_and_repeated_parameters_rejected() {
        let unknown = Query::parse(Some("sort=asc"), &["page"]).unwrap_err();
        assert!(detail(unknown).starts_with("sort: unknown parameter"));
        let repeated = Query::parse(Some("page=1&page=2"), &["page"]).unwrap_err();
        assert!(detail(repeated).starts_with("page: given more than once"));
    }

    #[test]
    fn empty_values_count_as_absent() {
        let query = query("provider=&status=&page=");
        let filter = event_filter(&query, true).unwrap();
        assert_eq!(filter.provider, None);
        assert!(filter.statuses.is_empty());
        assert_eq!(query.integer("page", 1).unwrap(), None);
    }
}
