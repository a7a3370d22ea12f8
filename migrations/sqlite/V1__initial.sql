-- Initial payhook schema for SQLite.
--
-- Names are the snake_case forms of the SQL Server tables and columns:
-- WebhookEvents -> webhook_events, WebhookProcessingLogs -> webhook_processing_logs,
-- PaymentEvents -> payment_events, EventId -> event_id, and so on.
--
-- Times are TEXT in the fixed-width UTC form YYYY-MM-DDTHH:MM:SS.ffffffZ, so comparing
-- the strings compares the instants. Columns that must keep their exact text are declared
-- TEXT: a NUMERIC column would turn '5.120' into the REAL 5.12.

CREATE TABLE webhook_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL CHECK (length(event_id) <= 255),
    provider TEXT NOT NULL CHECK (length(provider) <= 50),
    event_type TEXT NOT NULL CHECK (length(event_type) <= 100),
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'dead')),
    raw_payload TEXT NOT NULL,
    processed_payload TEXT,
    signature TEXT,
    source_ip TEXT CHECK (length(source_ip) <= 45),
    user_agent TEXT CHECK (length(user_agent) <= 500),
    error_message TEXT CHECK (length(error_message) <= 2000),
    attempt_count INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 3,
    next_retry_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    processed_at TEXT,
    headers TEXT NOT NULL DEFAULT '{}',
    signature_verified INTEGER NOT NULL DEFAULT 0 CHECK (signature_verified IN (0, 1)),
    signature_key_id TEXT CHECK (length(signature_key_id) <= 255),
    provider_created_at TEXT,
    published_at TEXT,
    locked_until TEXT
);

CREATE UNIQUE INDEX ux_webhook_events_provider_event_id
    ON webhook_events (provider, event_id);
CREATE INDEX ix_webhook_events_status_next_retry_at
    ON webhook_events (status, next_retry_at);
CREATE INDEX ix_webhook_events_provider_event_type
    ON webhook_events (provider, event_type);
CREATE INDEX ix_webhook_events_status_created_at
    ON webhook_events (status, created_at);
CREATE INDEX ix_webhook_events_created_at
    ON webhook_events (created_at);
CREATE INDEX ix_webhook_events_unpublished
    ON webhook_events (created_at) WHERE published_at IS NULL AND status = 'pending';

CREATE TABLE webhook_processing_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_event_id INTEGER NOT NULL REFERENCES webhook_events (id),
    processing_step TEXT NOT NULL CHECK (length(processing_step) <= 100),
    status TEXT NOT NULL CHECK (length(status) <= 50),
    duration_ms INTEGER NOT NULL,
    error_message TEXT CHECK (length(error_message) <= 2000),
    additional_data TEXT CHECK (length(additional_data) <= 4000),
    processed_at TEXT NOT NULL
);

CREATE INDEX ix_webhook_processing_logs_webhook_event_id
    ON webhook_processing_logs (webhook_event_id);

CREATE TABLE payment_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_event_id INTEGER NOT NULL REFERENCES webhook_events (id),
    payment_id TEXT NOT NULL CHECK (length(payment_id) <= 255),
    provider TEXT NOT NULL CHECK (length(provider) <= 50),
    event_type TEXT NOT NULL CHECK (length(event_type) <= 100),
    status TEXT NOT NULL CHECK (length(status) <= 50),
    -- Exact decimal string in major units, e.g. '5.120' or '-20.00'.
    amount TEXT,
    currency TEXT CHECK (length(currency) = 3),
    customer_id TEXT CHECK (length(customer_id) <= 255),
    order_id TEXT CHECK (length(order_id) <= 255),
    transaction_id TEXT CHECK (length(transaction_id) <= 255),
    metadata TEXT CHECK (length(metadata) <= 4000),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    amount_minor INTEGER,
    amount_exponent INTEGER,
    status_raw TEXT CHECK (length(status_raw) <= 100),
    provider_created_at TEXT
);

CREATE INDEX ix_payment_events_payment_id ON payment_events (payment_id);
CREATE INDEX ix_payment_events_provider_status ON payment_events (provider, status);
CREATE INDEX ix_payment_events_webhook_event_id ON payment_events (webhook_event_id);
