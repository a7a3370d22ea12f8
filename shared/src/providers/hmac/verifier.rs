//! The config-defined HMAC verifier.

use async_trait::async_trait;
use http::{HeaderMap, HeaderName};
use ring::hmac;
use serde_json::Value;

use super::config::{Algorithm, Encoding, HmacSchemeConfig, KeyEncoding, SignatureFormat};
use super::source::{ValueSource, parse_time};
use super::template::{MessageInputs, MessageTemplate, Part};
use crate::providers::signing::{
    check_window, decode_base64, decode_hex, key_id, parse_unix_seconds,
};
use crate::providers::{
    ConfigError, EventIdentity, IdentityError, Rejection, Verified, Verifier, VerifyRequest,
};
use crate::secret::Secret;

/// Source of the signed timestamp.
#[derive(Debug)]
enum TimestampSource {
    None,
    Item(String),
    Header(&'static str),
}

/// Verifies one provider's HMAC signatures as described by an [`HmacSchemeConfig`].
pub struct HmacVerifier {
    signature_header: &'static str,
    format: SignatureFormat,
    prefix: Option<String>,
    encoding: Encoding,
    template: MessageTemplate,
    timestamp: TimestampSource,
    tolerance_seconds: Option<i64>,
    url: Option<String>,
    keys: Vec<(String, hmac::Key)>,
    event_id: ValueSource,
    event_type: ValueSource,
    created_at: Option<ValueSource>,
}

impl std::fmt::Debug for HmacVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacVerifier")
            .field("signature_header", &self.signature_header)
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// Returns a lower-case header name with a `'static` lifetime, as [`Rejection`] requires.
///
/// Verifiers are built once at startup, so the few leaked bytes are bounded by the config.
fn static_header_name(field: &str, name: &str) -> Result<&'static str, ConfigError> {
    let parsed = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| ConfigError::invalid(field, format!("invalid header name {name:?}")))?;
    Ok(Box::leak(parsed.as_str().to_string().into_boxed_str()))
}

impl HmacVerifier {
    /// Validates `config` and the secrets; every mistake is reported here, at startup.
    pub fn new(config: HmacSchemeConfig, secrets: Vec<Secret>) -> Result<Self, ConfigError> {
        let template = MessageTemplate::parse(&config.message)?;
        let timestamp = timestamp_source(&config)?;
        check_timestamp_use(&config, &template, &timestamp)?;
        let url = check_url(&config, &template)?;
        check_format(&config)?;
        let keys = decode_keys(&config, &secrets)?;
        let tolerance_seconds = config
            .tolerance_seconds
            .map(|seconds| {
                i64::try_from(seconds)
                    .map_err(|_| ConfigError::invalid("tolerance_seconds", "value is too large"))
            })
            .transpose()?;
        Ok(HmacVerifier {
            signature_header: static_header_name("signature_header", &config.signature_header)?,
            format: config.signature_format,
            prefix: config.prefix,
            encoding: config.encoding,
            template,
            timestamp,
            tolerance_seconds,
            url,
            keys,
            event_id: ValueSource::parse("event_id", &config.event_id)?,
            event_type: ValueSource::parse("event_type", &config.event_type)?,
            created_at: config
                .created_at
                .as_deref()
                .map(|text| ValueSource::parse("created_at", text))
                .transpose()?,
        })
    }
}

fn timestamp_source(config: &HmacSchemeConfig) -> Result<TimestampSource, ConfigError> {
    let item = match &config.signature_format {
        SignatureFormat::KvList { timestamp_key, .. } => timestamp_key.clone(),
        SignatureFormat::Single => None,
    };
    match (item, &config.timestamp_header) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            "timestamp_header",
            "set either timestamp_header or signature_format.timestamp_key, not both",
        )),
        (Some(key), None) => Ok(TimestampSource::Item(key)),
        (None, Some(name)) => Ok(TimestampSource::Header(static_header_name(
            "timestamp_header",
            name,
        )?)),
        (None, None) => Ok(TimestampSource::None),
    }
}

/// Rejects configs whose timestamp would be checked without being signed, or vice versa.
fn check_timestamp_use(
    config: &HmacSchemeConfig,
    template: &MessageTemplate,
    timestamp: &TimestampSource,
) -> Result<(), ConfigError> {
    let has_source = !matches!(timestamp, TimestampSource::None);
    let signed = template.uses(&Part::Timestamp);
    if signed && !has_source {
        return Err(ConfigError::invalid(
            "message",
            "{timestamp} is used but no timestamp_header or timestamp_key is set",
        ));
    }
    if has_source && !signed {
        return Err(ConfigError::invalid(
            "message",
            "a timestamp source is set but {timestamp} is not part of the signed message, \
             so it would not be authenticated",
        ));
    }
    if config.tolerance_seconds.is_some() && !has_source {
        return Err(ConfigError::invalid(
            "tolerance_seconds",
            "a tolerance needs a timestamp_header or timestamp_key",
        ));
    }
    Ok(())
}

fn check_url(
    config: &HmacSchemeConfig,
    template: &MessageTemplate,
) -> Result<Option<String>, ConfigError> {
    match (&config.url, template.uses(&Part::Url)) {
        (Some(url), true) => {
            url::Url::parse(url)
                .map_err(|e| ConfigError::invalid("url", format!("{url:?} is not a URL: {e}")))?;
            Ok(Some(url.clone()))
        }
        (None, true) => Err(ConfigError::invalid(
            "url",
            "{url} is used in the message, so the exact public URL must be configured",
        )),
        (Some(_), false) => Err(ConfigError::invalid(
            "url",
            "url is set but {url} is not part of the message",
        )),
        (None, false) => Ok(None),
    }
}

fn check_format(config: &HmacSchemeConfig) -> Result<(), ConfigError> {
    if config.prefix.as_deref() == Some("") {
        return Err(ConfigError::invalid("prefix", "prefix must not be empty"));
    }
    if let SignatureFormat::KvList {
        item_separator,
        signature_key,
        timestamp_key,
    } = &config.signature_format
    {
        if item_separator.is_empty() || item_separator.contains('=') {
            return Err(ConfigError::invalid(
                "signature_format.item_separator",
                "separator must be non-empty and must not contain '='",
            ));
        }
        if signature_key.is_empty() || timestamp_key.as_deref() == Some("") {
            return Err(ConfigError::invalid(
                "signature_format",
                "signature_key and timestamp_key must not be empty",
            ));
        }
    }
    Ok(())
}

fn decode_keys(
    config: &HmacSchemeConfig,
    secrets: &[Secret],
) -> Result<Vec<(String, hmac::Key)>, ConfigError> {
    if secrets.is_empty() {
        return Err(ConfigError::NoSecrets);
    }
    let algorithm = match config.algorithm {
        Algorithm::HmacSha256 => hmac::HMAC_SHA256,
        Algorithm::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        Algorithm::HmacSha512 => hmac::HMAC_SHA512,
    };
    secrets
        .iter()
        .enumerate()
        .map(|(index, secret)| {
            let text = secret.expose();
            let bytes = match config.key_encoding {
                KeyEncoding::Utf8 => Some(text.as_bytes().to_vec()),
                KeyEncoding::Base64 => decode_base64(text),
                KeyEncoding::Hex => decode_hex(text),
            };
            let reason = match &bytes {
                None => Some(format!("not valid {:?} text", config.key_encoding)),
                Some(bytes) if bytes.is_empty() => Some("the secret is empty".to_string()),
                Some(_) => None,
            };
            if let Some(reason) = reason {
                return Err(ConfigError::InvalidSecret { index, reason });
            }
            let bytes = bytes.unwrap_or_default();
            Ok((key_id(index, &bytes), hmac::Key::new(algorithm, &bytes)))
        })
        .collect()
}

/// Signatures and timestamp read from the signature header (and the timestamp header).
struct ParsedHeader {
    raw: String,
    signatures: Vec<String>,
    timestamp: Option<String>,
}

impl HmacVerifier {
    fn parse_header(&self, headers: &HeaderMap) -> Result<ParsedHeader, Rejection> {
        let name = self.signature_header;
        let mut values = Vec::new();
        for value in headers.get_all(name) {
            values.push(value.to_str().map_err(|_| Rejection::MalformedHeader {
                header: name,
                reason: "value is not visible ASCII".to_string(),
            })?);
        }
        if values.iter().all(|value| value.is_empty()) {
            return Err(Rejection::MissingHeader(name));
        }
        let mut parsed = ParsedHeader {
            raw: values.join(", "),
            signatures: Vec::new(),
            timestamp: None,
        };
        match &self.format {
            SignatureFormat::Single => {
                parsed.signatures = values.iter().map(|value| value.to_string()).collect();
            }
            SignatureFormat::KvList {
                item_separator,
                signature_key,
                timestamp_key,
            } => {
                let items = values
                    .iter()
                    .flat_map(|value| value.split(item_separator.as_str()));
                for (key, value) in items.filter_map(|item| item.trim().split_once('=')) {
                    if key == signature_key {
                        parsed.signatures.push(value.to_string());
                    } else if Some(key) == timestamp_key.as_deref() {
                        if parsed.timestamp.is_some() {
                            return Err(Rejection::MalformedHeader {
                                header: name,
                                reason: format!("{key} appears more than once"),
                            });
                        }
                        parsed.timestamp = Some(value.to_string());
                    }
                }
            }
        }
        Ok(parsed)
    }

    fn read_timestamp(
        &self,
        headers: &HeaderMap,
        parsed: &ParsedHeader,
    ) -> Result<Option<(String, &'static str)>, Rejection> {
        let (value, header) = match &self.timestamp {
            TimestampSource::None => return Ok(None),
            TimestampSource::Item(key) => {
                let value = parsed.timestamp.clone().filter(|value| !value.is_empty());
                let value = value.ok_or_else(|| Rejection::MalformedHeader {
                    header: self.signature_header,
                    reason: format!("no {key}= item"),
                })?;
                return Ok(Some((value, self.signature_header)));
            }
            TimestampSource::Header(name) => {
                let value = headers.get(*name).and_then(|value| value.to_str().ok());
                (value.map(str::to_string), *name)
            }
        };
        match value {
            Some(value) if !value.is_empty() => Ok(Some((value, header))),
            _ => Err(Rejection::MissingHeader(header)),
        }
    }

    fn decode_signatures(&self, signatures: &[String]) -> Result<Vec<Vec<u8>>, Rejection> {
        let stripped: Vec<&str> = signatures
            .iter()
            .filter_map(|signature| match &self.prefix {
                Some(prefix) => signature.strip_prefix(prefix.as_str()),
                None => Some(signature.as_str()),
            })
            .collect();
        if stripped.is_empty() {
            return Err(Rejection::NoSupportedSignature(self.signature_header));
        }
        Ok(stripped
            .into_iter()
            .filter_map(|signature| match self.encoding {
                Encoding::Hex => decode_hex(signature),
                Encoding::Base64 => decode_base64(signature),
            })
            .collect())
    }
}

#[async_trait]
impl Verifier for HmacVerifier {
    async fn verify(&self, request: VerifyRequest<'_>) -> Result<Verified, Rejection> {
        let parsed = self.parse_header(request.headers)?;
        let timestamp = self.read_timestamp(request.headers, &parsed)?;
        if let Some((value, header)) = &timestamp {
            let seconds = parse_unix_seconds(value).ok_or(Rejection::MalformedHeader {
                header,
                reason: "timestamp is not Unix seconds".to_string(),
            })?;
            if let Some(tolerance) = self.tolerance_seconds {
                check_window(seconds, request.now, tolerance)?;
            }
        }
        let signatures = self.decode_signatures(&parsed.signatures)?;
        let inputs = MessageInputs {
            body: request.body,
            timestamp: timestamp.as_ref().map(|(value, _)| value.as_str()),
            url: self.url.as_deref(),
            headers: request.headers,
        };
        let message = self
            .template
            .render(&inputs)
            .map_err(|_| Rejection::MalformedHeader {
                header: self.signature_header,
                reason: "a header that is part of the signed message is missing".to_string(),
            })?;
        for (key_id, key) in &self.keys {
            if signatures
                .iter()
                .any(|signature| hmac::verify(key, &message, signature).is_ok())
            {
                let headers = self.signed_headers(request.headers);
                return Ok(Verified::new(key_id.clone(), parsed.raw, headers));
            }
        }
        Err(Rejection::SignatureMismatch)
    }

    fn identity(&self, headers: &HeaderMap, body: &[u8]) -> Result<EventIdentity, IdentityError> {
        let sources = [
            Some(&self.event_id),
            Some(&self.event_type),
            self.created_at.as_ref(),
        ];
        let needs_json = sources
            .iter()
            .any(|source| matches!(source, Some(ValueSource::Pointer(_))));
        let json: Value = if needs_json {
            serde_json::from_slice(body).map_err(|e| IdentityError::InvalidJson(e.to_string()))?
        } else {
            Value::Null
        };
        let event_id = self
            .event_id
            .read(headers, &json, body)
            .ok_or(IdentityError::MissingField("event_id"))?;
        let event_type = self
            .event_type
            .read(headers, &json, body)
            .ok_or(IdentityError::MissingField("event_type"))?;
        let created_at = self
            .created_at
            .as_ref()
            .and_then(|source| source.read(headers, &json, body))
            .and_then(|text| parse_time(&text));
        Ok(EventIdentity {
            event_id,
            event_type,
            created_at,
        })
    }
}

impl HmacVerifier {
    /// Returns the headers needed to verify the request again, plus those naming the event.
    fn signed_headers(&self, headers: &HeaderMap) -> Vec<(String, String)> {
        let mut names: Vec<HeaderName> = vec![HeaderName::from_static(self.signature_header)];
        if let TimestampSource::Header(name) = &self.timestamp {
            names.push(HeaderName::from_static(name));
        }
        for part in &self.template.parts {
            if let Part::Header(name) = part {
                names.push(name.clone());
            }
        }
        for source in [
            Some(&self.event_id),
            Some(&self.event_type),
            self.created_at.as_ref(),
        ] {
            if let Some(ValueSource::Header(name)) = source {
                names.push(name.clone());
            }
        }
        names.dedup();
        names
            .iter()
            .filter_map(|name| {
                let value = headers.get(name)?.to_str().ok()?;
                Some((name.as_str().to_string(), value.to_string()))
            })
            .collect()
    }
}
