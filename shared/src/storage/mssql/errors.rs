//! Classification of SQL Server errors by what the caller should do about them.

use crate::storage::StoreError;

/// What an error means for the operation that hit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A unique index rejected the row (2627, 2601).
    Duplicate,
    /// The transaction was rolled back by a deadlock or a lock timeout; running the whole
    /// operation again is safe.
    Retry,
    /// The value does not fit the schema.
    Invalid,
    /// The server or database cannot be used right now.
    Unavailable,
    /// Anything else.
    Other,
}

/// Classifies a server error number and severity.
pub fn classify_code(code: u32, severity: u8) -> ErrorClass {
    match code {
        2627 | 2601 => ErrorClass::Duplicate,
        // Deadlock victim, lock request timeout, snapshot update conflict.
        1205 | 1222 | 3960 => ErrorClass::Retry,
        // Truncation (8152, 2628), arithmetic overflow (8115), NULL into NOT NULL (515),
        // constraint conflict (547), conversion and date range errors.
        8152 | 2628 | 8115 | 515 | 547 | 241 | 242 | 8114 | 517 => ErrorClass::Invalid,
        // Cannot open database, login failed, database in transition or shutting down,
        // out of resources, and the transient errors of managed SQL Server offerings.
        4060 | 18456 | 952 | 6005 | 701 | 1204 | 40197 | 40501 | 40613 | 49918 | 49919 | 49920
        | 10928 | 10929 => ErrorClass::Unavailable,
        // Severity 20 and above ends the connection.
        _ if severity >= 20 => ErrorClass::Unavailable,
        _ => ErrorClass::Other,
    }
}

/// Classifies a driver error.
pub fn classify(error: &tiberius::error::Error) -> ErrorClass {
    use tiberius::error::Error;
    match error {
        Error::Server(token) => classify_code(token.code(), token.class()),
        Error::Io { .. } | Error::Tls(_) | Error::Routing { .. } => ErrorClass::Unavailable,
        _ => ErrorClass::Other,
    }
}

/// Error inside an operation: the driver's own, kept apart so retries and duplicates can
/// be recognised, or one already mapped to the store's terms.
#[derive(Debug)]
pub enum DbError {
    Sql(tiberius::error::Error),
    Store(StoreError),
}

impl DbError {
    pub fn class(&self) -> ErrorClass {
        match self {
            DbError::Sql(error) => classify(error),
            DbError::Store(_) => ErrorClass::Other,
        }
    }
}

impl From<tiberius::error::Error> for DbError {
    fn from(error: tiberius::error::Error) -> Self {
        DbError::Sql(error)
    }
}

impl From<StoreError> for DbError {
    fn from(error: StoreError) -> Self {
        DbError::Store(error)
    }
}

impl From<DbError> for StoreError {
    fn from(error: DbError) -> Self {
        let error = match error {
            DbError::Store(error) => return error,
            DbError::Sql(error) => error,
        };
        let message = describe(&error);
        match classify(&error) {
            ErrorClass::Invalid => StoreError::Invalid(message),
            ErrorClass::Unavailable | ErrorClass::Retry => StoreError::Unavailable(message),
            ErrorClass::Duplicate | ErrorClass::Other => StoreError::Backend(message),
        }
    }
}

/// Formats a driver error with its server error number, without any connection details.
pub fn describe(error: &tiberius::error::Error) -> String {
    match error {
        tiberius::error::Error::Server(token) => {
            format!("SQL Server error {}: {}", token.code(), token.message())
        }
        other => format!("SQL Server: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlock_and_lock_timeout_are_retried() {
        assert_eq!(classify_code(1205, 13), ErrorClass::Retry);
        assert_eq!(classify_code(1222, 16), ErrorClass::Retry);
    }

    #[test]
    fn unique_violations_are_duplicates() {
        assert_eq!(classify_code(2627, 14), ErrorClass::Duplicate);
        assert_eq!(classify_code(2601, 14), ErrorClass::Duplicate);
    }

    #[test]
    fn value_and_connection_errors_split() {
        assert_eq!(classify_code(8152, 16), ErrorClass::Invalid);
        assert_eq!(classify_code(2628, 16), ErrorClass::Invalid);
        assert_eq!(classify_code(18456, 14), ErrorClass::Unavailable);
        assert_eq!(classify_code(4060, 11), ErrorClass::Unavailable);
        assert_eq!(classify_code(50000, 21), ErrorClass::Unavailable);
        assert_eq!(classify_code(208, 16), ErrorClass::Other);
    }

    #[test]
    fn io_failure_maps_to_unavailable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = DbError::from(tiberius::error::Error::from(io));
        assert_eq!(error.class(), ErrorClass::Unavailable);
        let store = StoreError::from(error);
        assert!(matches!(store, StoreError::Unavailable(_)), "{store:?}");
    }
}
