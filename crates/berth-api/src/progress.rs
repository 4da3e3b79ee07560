//! The newline-delimited JSON messages of pull, push, build, load and import streams
//! (`jsonmessage.JSONMessage` in the docker CLI).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProgressDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ErrorDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct JsonMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "progressDetail", default, skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(rename = "errorDetail", default, skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    /// Deprecated by Docker but still read by docker-py, so always sent with `errorDetail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

impl JsonMessage {
    pub fn stream(s: impl Into<String>) -> Self {
        JsonMessage { stream: Some(s.into()), ..Default::default() }
    }

    pub fn status(s: impl Into<String>) -> Self {
        JsonMessage { status: Some(s.into()), ..Default::default() }
    }

    pub fn status_id(s: impl Into<String>, id: impl Into<String>) -> Self {
        JsonMessage { status: Some(s.into()), id: Some(id.into()), ..Default::default() }
    }

    pub fn error(msg: impl Into<String>) -> Self {
        let m = msg.into();
        JsonMessage {
            error_detail: Some(ErrorDetail { code: None, message: m.clone() }),
            error: Some(m),
            ..Default::default()
        }
    }

    pub fn aux(v: serde_json::Value) -> Self {
        JsonMessage { aux: Some(v), ..Default::default() }
    }

    /// The message as one line of the stream, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}
