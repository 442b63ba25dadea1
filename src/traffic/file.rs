//! The `file` provider: writes the plan as JSON, atomically (write a temporary file, fsync, rename).
//!
//! For dry runs, debugging and external tooling that watches a file.

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{LiveState, ProviderError, TrafficProvider, nonzero};
use crate::plan::{Epoch, PlanId, PlanKind, TrafficPlan, Weights};

/// The JSON document written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanFile {
    /// The plan's id.
    pub plan_id: PlanId,
    /// Its epoch.
    pub epoch: Epoch,
    /// Weights per region.
    pub weights: Weights,
    /// Its kind.
    pub kind: PlanKind,
    /// Its one-line reason.
    pub reason: String,
    /// When it was written.
    pub written_at: chrono::DateTime<Utc>,
}

/// Writes plans to a JSON file.
#[derive(Debug, Clone)]
pub struct FileProvider {
    name: String,
    path: PathBuf,
}

impl FileProvider {
    /// A provider writing to `path`.
    pub fn new(name: String, path: PathBuf) -> Self {
        Self { name, path }
    }

    fn io(&self, context: String, source: std::io::Error) -> ProviderError {
        ProviderError::Io { provider: self.name.clone(), context, source }
    }

    async fn read(&self) -> Result<Option<PlanFile>, ProviderError> {
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| ProviderError::Malformed {
                provider: self.name.clone(),
                detail: format!("{} is not a plan file: {e}", self.path.display()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(format!("reading {}", self.path.display()), e)),
        }
    }
}

#[async_trait]
impl TrafficProvider for FileProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn apply(&self, plan: &TrafficPlan) -> Result<(), ProviderError> {
        if let Some(live) = self.read().await? {
            if live.epoch > plan.epoch {
                return Err(ProviderError::StaleEpoch {
                    provider: self.name.clone(),
                    plan: plan.epoch,
                    live: live.epoch,
                });
            }
            if live.plan_id == plan.id {
                return Ok(()); // already applied
            }
        }
        let doc = PlanFile {
            plan_id: plan.id,
            epoch: plan.epoch,
            weights: plan.weights.clone(),
            kind: plan.kind,
            reason: plan.reason.clone(),
            written_at: Utc::now(),
        };
        let body = serde_json::to_vec_pretty(&doc)
            .map_err(|e| ProviderError::Malformed { provider: self.name.clone(), detail: e.to_string() })?;
        let tmp = self.path.with_extension(format!("tmp-{}", std::process::id()));
        let path = self.path.clone();
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || -> Result<(), ProviderError> {
            use std::io::Write;
            let io = |context: String, source| ProviderError::Io { provider: name.clone(), context, source };
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| io(format!("creating {}", dir.display()), e))?;
            }
            let mut f = std::fs::File::create(&tmp).map_err(|e| io(format!("creating {}", tmp.display()), e))?;
            f.write_all(&body).map_err(|e| io(format!("writing {}", tmp.display()), e))?;
            f.sync_all().map_err(|e| io(format!("syncing {}", tmp.display()), e))?;
            std::fs::rename(&tmp, &path).map_err(|e| io(format!("renaming onto {}", path.display()), e))?;
            Ok(())
        })
        .await
        .map_err(|e| self.io("writer task".into(), std::io::Error::other(e.to_string())))?
    }

    async fn read_back(&self) -> Result<LiveState, ProviderError> {
        Ok(match self.read().await? {
            Some(doc) => LiveState { weights: nonzero(&doc.weights), epoch: Some(doc.epoch) },
            None => LiveState { weights: Weights::default(), epoch: None },
        })
    }
}
