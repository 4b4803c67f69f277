//! Request flows.
