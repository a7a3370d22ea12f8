//! Signed-message templates such as `{timestamp}:{body}` or `{url}{body}`.

use http::HeaderName;

use crate::providers::ConfigError;

/// One piece of a signed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Literal(String),
    Body,
    Timestamp,
    Url,
    Header(HeaderName),
}

/// A parsed message template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageTemplate {
    pub(crate) parts: Vec<Part>,
}

/// Values substituted into a template for one request.
pub(crate) struct MessageInputs<'a> {
    pub(crate) body: &'a [u8],
    pub(crate) timestamp: Option<&'a str>,
    pub(crate) url: Option<&'a str>,
    pub(crate) headers: &'a http::HeaderMap,
}

impl MessageTemplate {
    /// Parses a template; `{body}` must appear exactly once so the body is always signed.
    pub(crate) fn parse(text: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::invalid("message", reason);
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let Some(open) = rest.find(['{', '}']) else {
                parts.push(Part::Literal(rest.to_string()));
                break;
            };
            if rest[open..].starts_with('}') {
                return Err(invalid(format!("unmatched '}}' in {text:?}")));
            }
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| invalid(format!("unclosed '{{' in {text:?}")))?;
            parts.push(parse_placeholder(&rest[open + 1..open + close]).map_err(invalid)?);
            rest = &rest[open + close + 1..];
        }
        let bodies = parts.iter().filter(|part| **part == Part::Body).count();
        if bodies != 1 {
            return Err(invalid(format!(
                "{{body}} must appear exactly once, found {bodies} in {text:?}"
            )));
        }
        Ok(MessageTemplate { parts })
    }

    pub(crate) fn uses(&self, wanted: &Part) -> bool {
        self.parts.iter().any(|part| part == wanted)
    }

    /// Builds the signed bytes. Returns the name of a `{header:…}` part that is missing.
    pub(crate) fn render(&self, inputs: &MessageInputs<'_>) -> Result<Vec<u8>, HeaderName> {
        let mut message = Vec::with_capacity(inputs.body.len() + 64);
        for part in &self.parts {
            match part {
                Part::Literal(text) => message.extend_from_slice(text.as_bytes()),
                Part::Body => message.extend_from_slice(inputs.body),
                Part::Timestamp => {
                    message.extend_from_slice(inputs.timestamp.unwrap_or("").as_bytes())
                }
                Part::Url => message.extend_from_slice(inputs.url.unwrap_or("").as_bytes()),
                Part::Header(name) => {
                    let value = inputs.headers.get(name).ok_or_else(|| name.clone())?;
                    message.extend_from_slice(value.as_bytes());
                }
            }
        }
        Ok(message)
    }
}

fn parse_placeholder(name: &str) -> Result<Part, String> {
    match name {
        "body" => Ok(Part::Body),
        "timestamp" => Ok(Part::Timestamp),
        "url" => Ok(Part::Url),
        _ => {
            let header = name.strip_prefix("header:").ok_or_else(|| {
                format!("unknown placeholder {{{name}}}; use body, timestamp, url or header:NAME")
            })?;
            HeaderName::from_bytes(header.as_bytes())
                .map(Part::Header)
                .map_err(|_| format!("invalid header name {header:?} in {{{name}}}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_parts_in_order() {
        let template = MessageTemplate::parse("{timestamp}:{body}").unwrap();

        assert_eq!(
            template.parts,
            vec![Part::Timestamp, Part::Literal(":".to_string()), Part::Body]
        );
    }

    #[test]
    fn template_renders_header_and_url() {
        let template = MessageTemplate::parse("{url}|{header:X-Id}|{body}").unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("x-id", "abc".parse().unwrap());
        let inputs = MessageInputs {
            body: b"{}",
            timestamp: None,
            url: Some("https://example.test/hook"),
            headers: &headers,
        };

        let message = template.render(&inputs).unwrap();

        assert_eq!(message, b"https://example.test/hook|abc|{}");
    }

    #[test]
    fn template_errors_are_reported() {
        for bad in [
            "{timestamp}",
            "{body}{body}",
            "{body",
            "body}",
            "{nope}{body}",
            "{header:a b}{body}",
        ] {
            assert!(MessageTemplate::parse(bad).is_err(), "{bad:?}");
        }
    }
}
