//! One orchestrator per region on etcd: the backend in-process against a real etcd ([`fence`]),
//! and three orchestrator processes through the partition scenarios ([`scenarios`]).

mod fence;
mod scenarios;
