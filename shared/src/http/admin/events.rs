//! The monitoring API: statistics, the event list, one event's detail, replay and retry.

use http::{Response, StatusCode};
use serde::Serialize;

use super::AdminApi;
use super::json::{EventDetailJson, EventPageJson, StatisticsJson};
use super::params::{Query, event_filter, invalid};
use crate::http::error::{ApiError, Body, json_response};
use crate::storage::StoreError;

/// Events per page when `pageSize` is not given.
pub const DEFAULT_PAGE_SIZE: i64 = 20;
/// Largest page; a larger `pageSize` is reduced to it.
pub const MAX_PAGE_SIZE: i64 = 200;
/// Events a retry requeues when `maxRetries` is not given.
pub const DEFAULT_RETRY_LIMIT: i64 = 100;
/// Most events one retry requeues; a larger `maxRetries` is reduced to it.
pub const MAX_RETRY_LIMIT: i64 = 10_000;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RetryJson {
    message: String,
    retry_count: usize,
    event_ids: Vec<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReplayJson {
    message: String,
    id: i64,
    status: &'static str,
}

/// Logs a storage failure and maps it to the response for the client.
fn store_error(operation: &'static str, error: StoreError) -> ApiError {
    match &error {
        StoreError::NotFound(_) | StoreError::Conflict { .. } => {}
        _ => tracing::error!(operation, %error, "admin API storage call failed"),
    }
    ApiError::from(&error)
}

/// Parses the `{id}` path segment.
fn event_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id >= 1)
        .ok_or_else(|| invalid("id", format!("{text:?} is not a positive whole number")))
}

impl AdminApi {
    pub(super) async fn statistics(&self, raw: Option<&str>) -> Result<Response<Body>, ApiError> {
        let query = Query::parse(raw, &["provider", "eventType", "fromDate", "toDate"])?;
        let filter = event_filter(&query, false)?;
        let statistics = self
            .store
            .statistics(&filter)
            .await
            .map_err(|error| store_error("statistics", error))?;
        Ok(json_response(
            StatusCode::OK,
            &StatisticsJson::from(&statistics),
        ))
    }

    pub(super) async fn list_events(&self, raw: Option<&str>) -> Result<Response<Body>, ApiError> {
        let query = Query::parse(
            raw,
            &[
                "provider",
                "status",
                "eventType",
                "fromDate",
                "toDate",
                "page",
                "pageSize",
            ],
        )?;
        let filter = event_filter(&query, true)?;
        let page = query.integer("page", 1)?.unwrap_or(1);
        let page_size = query
            .integer("pageSize", 1)?
            .unwrap_or(DEFAULT_PAGE_SIZE)
            .min(MAX_PAGE_SIZE);
        if (page - 1).checked_mul(page_size).is_none() {
            return Err(invalid("page", format!("{page} is out of range")));
        }
        let result = self
            .store
            .list_events(&filter, page, page_size)
            .await
            .map_err(|error| store_error("list events", error))?;
        Ok(json_response(
            StatusCode::OK,
            &EventPageJson::new(&result, page, page_size),
        ))
    }

    pub(super) async fn event_detail(
        &self,
        id: &str,
        raw: Option<&str>,
    ) -> Result<Response<Body>, ApiError> {
        let query = Query::parse(raw, &["include"])?;
        let id = event_id(id)?;
        let mut include_payload = false;
        for part in query.text("include").unwrap_or("").split(',') {
            match part.trim() {
                "" => {}
                "payload" => include_payload = true,
                other => {
                    return Err(invalid(
                        "include",
                        format!("unknown value {other:?}; the only value is payload"),
                    ));
                }
            }
        }
        let detail = self
            .store
            .event_detail(id)
            .await
            .map_err(|error| store_error("event detail", error))?
            .ok_or_else(|| ApiError::not_found(format!("webhook event {id} not found")))?;
        Ok(json_response(
            StatusCode::OK,
            &EventDetailJson::new(&detail, include_payload),
        ))
    }

    pub(super) async fn replay(
        &self,
        id: &str,
        raw: Option<&str>,
    ) -> Result<Response<Body>, ApiError> {
        Query::parse(raw, &[])?;
        let id = event_id(id)?;
        self.store
            .replay(id)
            .await
            .map_err(|error| store_error("replay", error))?;
        tracing::info!(id, "webhook event reset to pending for replay");
        self.wake_workers();
        Ok(json_response(
            StatusCode::ACCEPTED,
            &ReplayJson {
                message: format!("Webhook event {id} queued for replay"),
                id,
                status: "pending",
            },
        ))
    }

    pub(super) async fn retry(&self, raw: Option<&str>) -> Result<Response<Body>, ApiError> {
        let query = Query::parse(raw, &["maxRetries", "provider", "eventType"])?;
        let filter = event_filter(&query, false)?;
        let limit = query
            .integer("maxRetries", 0)?
            .unwrap_or(DEFAULT_RETRY_LIMIT)
            .min(MAX_RETRY_LIMIT);
        let ids = self
            .store
            .requeue(&filter, limit)
            .await
            .map_err(|error| store_error("retry", error))?;
        tracing::info!(
            count = ids.len(),
            limit,
            provider = filter.provider.as_deref().unwrap_or("*"),
            event_type = filter.event_type.as_deref().unwrap_or("*"),
            "failed and dead webhook events reset to pending"
        );
        if !ids.is_empty() {
            self.wake_workers();
        }
        Ok(json_response(
            StatusCode::OK,
            &RetryJson {
                message: format!("Retried {} failed webhooks", ids.len()),
                retry_count: ids.len(),
                event_ids: ids,
            },
        ))
    }

    fn wake_workers(&self) {
        if let Some(queue) = &self.queue {
            queue.wake();
        }
    }
}
