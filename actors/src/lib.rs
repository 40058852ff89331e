//! The actor layer of ractor-resilience (work in progress).
