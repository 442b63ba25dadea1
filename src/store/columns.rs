//! Text columns that hold a kind, a state or a region name, mapped to their
//! domain types at the store's edge.
//!
//! The schema keeps these as plain `text` (migrations are forward-only and stay
//! as they are); the rest of the program speaks in enums. Each enum here gets
//! sqlx's `Type`, `Encode` and `Decode` for PostgreSQL, so a record binds its
//! `Health` or `PlanKind` directly and a row struct reads one back with
//! `query_as`. The words written are the ones the domain type already uses
//! (its `as_str`, `Display` or serde name): no second spelling lives here.
//!
//! A word that names no variant does not decode: the row read fails with
//! [`UnknownText`], which [`q`](super::q) turns into
//! [`StoreError::BadValue`](super::StoreError::BadValue) naming the column and
//! the value. It never panics and never silently becomes another variant.

use std::borrow::Cow;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

use crate::alarm::AlarmKind;
use crate::drill::{DrillEventKind, DrillState};
use crate::health::Health;
use crate::lag::{LagSource, LagState};
use crate::plan::PlanKind;
use crate::region::{Layer, RegionName};

/// A text value that names no variant of the enum its column holds.
#[derive(Debug, thiserror::Error)]
#[error("`{value}` is not a {expected}")]
pub(crate) struct UnknownText {
    /// What the column should hold (`plan kind`, `drill state` …).
    pub(crate) expected: &'static str,
    /// The value found.
    pub(crate) value: String,
}

/// An enum stored as one word of a fixed set.
pub(crate) trait TextColumn: Sized + Copy + 'static {
    /// What the column holds, for error messages.
    const EXPECTED: &'static str;
    /// Every variant.
    const ALL: &'static [Self];

    /// The word stored for this variant.
    fn text(self) -> Cow<'static, str>;

    /// The variant stored as `s`, if any.
    fn from_text(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.text() == s)
    }
}

/// Implements [`TextColumn`] and sqlx's text mapping for an enum.
///
/// With a variant list, the list is checked by an exhaustive `match`: adding a
/// variant to the domain type fails to compile until it is listed here too. A type
/// that already owns its list of every variant (`all = Type::ALL`) names it instead.
macro_rules! text_column {
    ($ty:ident, $expected:literal, |$v:ident| $word:expr, [$($variant:ident),+ $(,)?]) => {
        impl $crate::store::columns::TextColumn for $ty {
            const EXPECTED: &'static str = $expected;
            const ALL: &'static [Self] = &[$($ty::$variant),+];

            fn text(self) -> ::std::borrow::Cow<'static, str> {
                let $v = self;
                match $v {
                    $($ty::$variant)|+ => $word.into(),
                }
            }
        }

        text_column!(@sqlx $ty);
    };
    ($ty:ident, $expected:literal, |$v:ident| $word:expr, all = $all:expr) => {
        impl $crate::store::columns::TextColumn for $ty {
            const EXPECTED: &'static str = $expected;
            const ALL: &'static [Self] = &$all;

            fn text(self) -> ::std::borrow::Cow<'static, str> {
                let $v = self;
                $word.into()
            }
        }

        text_column!(@sqlx $ty);
    };
    (@sqlx $ty:ident) => {
        impl ::sqlx::Type<::sqlx::Postgres> for $ty {
            fn type_info() -> ::sqlx::postgres::PgTypeInfo {
                <&str as ::sqlx::Type<::sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &::sqlx::postgres::PgTypeInfo) -> bool {
                <&str as ::sqlx::Type<::sqlx::Postgres>>::compatible(ty)
            }
        }

        impl ::sqlx::postgres::PgHasArrayType for $ty {
            fn array_type_info() -> ::sqlx::postgres::PgTypeInfo {
                <&str as ::sqlx::postgres::PgHasArrayType>::array_type_info()
            }
        }

        impl ::sqlx::Encode<'_, ::sqlx::Postgres> for $ty {
            fn encode_by_ref(&self, buf: &mut ::sqlx::postgres::PgArgumentBuffer) -> Result<::sqlx::encode::IsNull, ::sqlx::error::BoxDynError> {
                <&str as ::sqlx::Encode<'_, ::sqlx::Postgres>>::encode(&*self.text(), buf)
            }
        }

        impl<'r> ::sqlx::Decode<'r, ::sqlx::Postgres> for $ty {
            fn decode(value: ::sqlx::postgres::PgValueRef<'r>) -> Result<Self, ::sqlx::error::BoxDynError> {
                let s = <&str as ::sqlx::Decode<'r, ::sqlx::Postgres>>::decode(value)?;
                <$ty as $crate::store::columns::TextColumn>::from_text(s)
                    .ok_or_else(|| $crate::store::columns::UnknownText { expected: <$ty as $crate::store::columns::TextColumn>::EXPECTED, value: s.to_owned() }.into())
            }
        }
    };
}
pub(super) use text_column;

/// The serde name of a unit variant (the replication types have no `as_str`).
fn serde_word<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v).ok().and_then(|j| j.as_str().map(str::to_owned)).unwrap_or_default()
}

text_column!(PlanKind, "plan kind", |k| k.as_str(), all = PlanKind::ALL);
text_column!(
    DrillState,
    "drill state",
    |s| s.as_str(),
    [Shifting, Holding, RollingBack, Completed, Aborted, Failed, Interrupted, DryRun]
);
text_column!(AlarmKind, "alarm kind", |k| k.as_str(), all = AlarmKind::ALL);
text_column!(DrillEventKind, "drill event kind", |k| k.as_str(), all = DrillEventKind::ALL);
text_column!(Health, "health", |h| h.to_string(), [Up, Degraded, Down, Unknown]);
text_column!(Layer, "layer", |l| l.to_string(), [Infra, Middleware, App]);
text_column!(LagState, "lag state", |s| serde_word(s), [Streaming, CatchingUp, Stopped, Paused, Unknown]);
text_column!(LagSource, "lag source", |s| serde_word(s), [Primary, Standby, Heartbeat]);

// A region name is any text: the config stage validated the names written, and
// a region removed from the config since still reads back under its old name.
impl Type<Postgres> for RegionName {
    fn type_info() -> PgTypeInfo {
        <&str as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <&str as Type<Postgres>>::compatible(ty)
    }
}

impl PgHasArrayType for RegionName {
    fn array_type_info() -> PgTypeInfo {
        <&str as PgHasArrayType>::array_type_info()
    }
}

impl Encode<'_, Postgres> for RegionName {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <&str as Encode<'_, Postgres>>::encode(self.as_str(), buf)
    }
}

impl<'r> Decode<'r, Postgres> for RegionName {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        <&str as Decode<'r, Postgres>>::decode(value).map(RegionName::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant's word reads back as that variant, and the word is the one
    /// the API shows (serde), so the store and the JSON never disagree.
    fn round_trips<T: TextColumn + PartialEq + std::fmt::Debug + serde::Serialize>() {
        for v in T::ALL {
            assert_eq!(T::from_text(&v.text()), Some(*v), "{} {v:?}", T::EXPECTED);
            assert_eq!(serde_word(*v), v.text(), "{} {v:?} is stored under another name than the API's", T::EXPECTED);
        }
        assert_eq!(T::from_text("no-such-word"), None);
    }

    #[test]
    fn every_stored_kind_and_state_reads_back_as_itself_under_its_api_name() {
        round_trips::<AlarmKind>();
        round_trips::<DrillEventKind>();
        round_trips::<PlanKind>();
        round_trips::<DrillState>();
        round_trips::<Health>();
        round_trips::<Layer>();
        round_trips::<LagState>();
        round_trips::<LagSource>();
        round_trips::<super::super::events::EventKind>();
    }

    #[test]
    fn stored_words_are_the_ones_earlier_versions_wrote() {
        // Rows already in the store were written with these words; they must keep decoding.
        assert_eq!(PlanKind::DegradeShift.text(), "degrade_shift");
        assert_eq!(DrillState::RollingBack.text(), "rolling_back");
        assert_eq!(DrillState::DryRun.text(), "dry_run");
        assert_eq!(Health::Degraded.text(), "degraded");
        assert_eq!(Layer::Middleware.text(), "middleware");
        assert_eq!(LagState::CatchingUp.text(), "catching_up");
        assert_eq!(LagSource::Heartbeat.text(), "heartbeat");
    }

    #[test]
    fn an_unknown_word_names_what_was_expected_and_what_was_found() {
        let e = UnknownText { expected: PlanKind::EXPECTED, value: "teleport".into() };
        assert_eq!(e.to_string(), "`teleport` is not a plan kind");
    }
}
