//! temp
pub mod config;
pub mod decide;
pub mod health;
pub mod observation;
pub mod plan;
pub mod policy;
pub mod region;
pub mod serde_util;
