-- Initial payhook schema for PostgreSQL.
--
-- Names are the snake_case forms of the SQL Server tables and columns:
-- WebhookEvents -> webhook_events, WebhookProcessingLogs -> webhook_processing_logs,
-- PaymentEvents -> payment_events, EventId -> event_id, and so on.
-- Times are TIMESTAMPTZ (microsecond precision, stored as UTC).

CREATE TABLE webhook_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id VARCHAR(255) NOT NULL,
    provider VARCHAR(50) NOT NULL,
    event_type VARCHAR(100) NOT NULL,
    status VARCHAR(50) NOT NULL
        CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'dead')),
    raw_payload TEXT NOT NULL,
    processed_payload TEXT,
    signature TEXT,
    source_ip VARCHAR(45),
    user_agent VARCHAR(500),
    error_message VARCHAR(2000),
    attempt_count INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 3,
    next_retry_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at TIMESTAMPTZ,
    headers TEXT NOT NULL DEFAULT '{}',
    signature_verified BOOLEAN NOT NULL DEFAULT FALSE,
    signature_key_id VARCHAR(255),
    provider_created_at TIMESTAMPTZ,
    published_at TIMESTAMPTZ,
    locked_until TIMESTAMPTZ
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
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_event_id BIGINT NOT NULL REFERENCES webhook_events (id),
    processing_step VARCHAR(100) NOT NULL,
    status VARCHAR(50) NOT NULL,
    duration_ms BIGINT NOT NULL,
    error_message VARCHAR(2000),
    additional_data VARCHAR(4000),
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX ix_webhook_processing_logs_webhook_event_id
    ON webhook_processing_logs (webhook_event_id);

CREATE TABLE payment_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_event_id BIGINT NOT NULL REFERENCES webhook_events (id),
    payment_id VARCHAR(255) NOT NULL,
    provider VARCHAR(50) NOT NULL,
    event_type VARCHAR(100) NOT NULL,
    status VARCHAR(50) NOT NULL,
    -- Unconstrained NUMERIC keeps the scale it is given, so 5.120 stays 5.120.
    amount NUMERIC,
    currency CHAR(3),
    customer_id VARCHAR(255),
    order_id VARCHAR(255),
    transaction_id VARCHAR(255),
    metadata VARCHAR(4000),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    amount_minor BIGINT,
    amount_exponent INTEGER,
    status_raw VARCHAR(100),
    provider_created_at TIMESTAMPTZ
);

CREATE INDEX ix_payment_events_payment_id ON payment_events (payment_id);
CREATE INDEX ix_payment_events_provider_status ON payment_events (provider, status);
CREATE INDEX ix_payment_events_webhook_event_id ON payment_events (webhook_event_id);
