//! Small helpers without a better home: lossless display of byte paths and
//! timestamps in the formats the interface contract fixes.

pub mod bytes;
pub mod time;
