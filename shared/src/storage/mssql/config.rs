//! Connection strings: `mssql://` and `sqlserver://` URLs, and ADO.NET strings.
//!
//! Errors never repeat the input, because it may hold a password. tiberius keeps the
//! password in a redacting secret, so the resulting `Config` is safe to print with `{:?}`.

use tiberius::{AuthMethod, Config, EncryptionLevel};
use url::Url;

use crate::storage::StoreError;

const DEFAULT_PORT: u16 = 1433;

/// Builds a tiberius configuration from a URL or an ADO.NET connection string.
///
/// URL form: `mssql://user:password@host:1433/Database?trust_server_certificate=true`.
/// User and password are percent-decoded. Query parameters (case and `_` ignored):
/// `trust_server_certificate` (`true`/`false`), `encrypt` (`true`, `false`, `strict` or
/// `danger_plaintext`) and `application_name`. Encryption is required by default.
///
/// ADO.NET form: `Server=tcp:host,1433;Database=WebhookDb;User Id=sa;Password=...;
/// TrustServerCertificate=true`, as tiberius reads it.
pub fn parse(input: &str) -> Result<Config, StoreError> {
    let trimmed = input.trim();
    let lower = trimmed.to_ascii_lowercase();
    if lower.starts_with("mssql://") || lower.starts_with("sqlserver://") {
        return parse_url(trimmed);
    }
    Config::from_ado_string(trimmed).map_err(|_| {
        StoreError::Invalid(
            "invalid SQL Server connection string: expected Server=...;Database=...;\
             User Id=...;Password=...; with values that contain ';' quoted"
                .to_string(),
        )
    })
}

fn invalid(reason: &str) -> StoreError {
    StoreError::Invalid(format!("invalid SQL Server URL: {reason}"))
}

fn parse_url(input: &str) -> Result<Config, StoreError> {
    let url = Url::parse(input).map_err(|error| invalid(&error.to_string()))?;
    let host = url
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(|| invalid("no host"))?;
    let mut config = Config::new();
    config.host(host.trim_start_matches('[').trim_end_matches(']'));
    config.port(url.port().unwrap_or(DEFAULT_PORT));
    let database = percent_decode(url.path().trim_start_matches('/'))
        .ok_or_else(|| invalid("the database name is not valid percent-encoded UTF-8"))?;
    if database.contains('/') {
        return Err(invalid("the path must be a single database name"));
    }
    if !database.is_empty() {
        config.database(database);
    }
    let user = percent_decode(url.username())
        .ok_or_else(|| invalid("the user name is not valid percent-encoded UTF-8"))?;
    let password = percent_decode(url.password().unwrap_or(""))
        .ok_or_else(|| invalid("the password is not valid percent-encoded UTF-8"))?;
    config.authentication(AuthMethod::sql_server(user, password));
    config.encryption(EncryptionLevel::Required);
    for (key, value) in url.query_pairs() {
        let key: String = key
            .chars()
            .filter(|ch| *ch != '_')
            .map(|ch| ch.to_ascii_lowercase())
            .collect();
        match key.as_str() {
            "trustservercertificate" => {
                if parse_bool(&key, &value)? {
                    config.trust_cert();
                }
            }
            "encrypt" => config.encryption(parse_encryption(&value)?),
            "applicationname" => config.application_name(value),
            _ => {
                return Err(invalid(&format!(
                    "unknown parameter {key:?}; accepted: trust_server_certificate, encrypt, \
                     application_name"
                )));
            }
        }
    }
    Ok(config)
}

fn parse_bool(key: &str, value: &str) -> Result<bool, StoreError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(invalid(&format!("{key} must be true or false"))),
    }
}

fn parse_encryption(value: &str) -> Result<EncryptionLevel, StoreError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "required" | "mandatory" => Ok(EncryptionLevel::Required),
        "false" | "no" | "0" | "optional" => Ok(EncryptionLevel::Off),
        "strict" => Ok(EncryptionLevel::Strict),
        "danger_plaintext" => Ok(EncryptionLevel::NotSupported),
        _ => Err(invalid(
            "encrypt must be true, false, strict or danger_plaintext",
        )),
    }
}

/// Decodes `%XX` escapes; `None` when an escape is malformed or the result is not UTF-8.
fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes.get(index + 1..index + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            decoded.push(u8::from_str_radix(text, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "Sup3r;Secret=Pw";

    fn described(config: &Config) -> String {
        format!("{config:?}")
    }

    #[test]
    fn url_sets_host_port_database_and_trust() {
        let config = parse(
            "mssql://sa:Sup3r%3BSecret%3DPw@db.internal:14330/WebhookDb\
             ?trust_server_certificate=true&encrypt=true",
        )
        .expect("valid URL");
        assert_eq!(config.get_addr(), "db.internal:14330");
        let text = described(&config);
        assert!(text.contains("database: Some(\"WebhookDb\")"), "{text}");
        assert!(text.contains("bypass: true"), "{text}");
        assert!(text.contains("encryption: Required"), "{text}");
        assert!(text.contains("\"sa\""), "{text}");
        assert!(!text.contains("Sup3r"), "password leaked: {text}");
    }

    #[test]
    fn url_defaults_to_port_and_verification() {
        let config = parse("sqlserver://app:pw@127.0.0.1/payhook").expect("valid URL");
        assert_eq!(config.get_addr(), "127.0.0.1:1433");
        let text = described(&config);
        assert!(text.contains("bypass: false"), "{text}");
        assert!(text.contains("encryption: Required"), "{text}");
        let off = parse("mssql://app:pw@127.0.0.1/payhook?Encrypt=false").expect("valid URL");
        assert!(described(&off).contains("encryption: Off"));
    }

    #[test]
    fn ado_string_is_read_by_tiberius() {
        let config = parse(&format!(
            "Server=tcp:sql.example.test,1433;Database=WebhookDb;User Id=sa;\
             Password='{SECRET}';TrustServerCertificate=true"
        ))
        .expect("valid ADO.NET string");
        assert_eq!(config.get_addr(), "sql.example.test:1433");
        let text = described(&config);
        assert!(text.contains("database: Some(\"WebhookDb\")"), "{text}");
        assert!(text.contains("bypass: true"), "{text}");
        assert!(!text.contains("Sup3r"), "password leaked: {text}");
    }

    #[test]
    fn bad_input_errors_omit_the_password() {
        for input in [
            format!("mssql://sa:{SECRET}@host/db?verify=maybe"),
            format!("mssql://sa:{SECRET}@host/db?trust_server_certificate=perhaps"),
            format!("mssql://sa:{SECRET}%zz@host/db"),
            format!("Server=tcp:host,notaport;Password={SECRET};TrustServerCertificate=maybe"),
        ] {
            let Err(StoreError::Invalid(message)) = parse(&input) else {
                panic!("accepted {input}");
            };
            assert!(!message.contains("Secret"), "{message}");
            assert!(!message.contains("Sup3r"), "{message}");
        }
    }

    #[test]
    fn percent_decode_rejects_broken_escapes() {
        assert_eq!(percent_decode("a%20b%3D").as_deref(), Some("a b="));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
    }
}
