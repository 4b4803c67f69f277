//! Apache boundary.
