//! Reading request headers for signature checks.

use http::HeaderMap;

use super::Rejection;

/// Returns a header's value as text, or `None` when the header is absent.
///
/// A header whose value is not visible ASCII is malformed rather than absent, so an attacker
/// cannot make a verifier fall back to another header by sending invalid bytes.
pub(crate) fn optional_header<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a str>, Rejection> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    value
        .to_str()
        .map(Some)
        .map_err(|_| Rejection::MalformedHeader {
            header: name,
            reason: "value is not visible ASCII".to_string(),
        })
}

/// Returns a header's value as text, rejecting a missing or empty header.
pub(crate) fn required_header<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<&'a str, Rejection> {
    match optional_header(headers, name)? {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(Rejection::MissingHeader(name)),
    }
}

/// Returns `(name, value)` pairs for the named headers that are present, for
/// [`super::Verified::headers`].
pub(crate) fn collect_headers(
    headers: &HeaderMap,
    names: &[&'static str],
) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}
