//! End-to-end tests of the application over HTTP: the real router on a loopback port, a
//! fresh database per test (SQLite, or PostgreSQL with MIMAMORI_TEST_DATABASE_URL), the
//! real workers (dispatcher, apalis queue) and the dev outbox provider.
mod access;
mod auth;
mod cache;
mod channels;
mod charts;
mod cli;
mod contracts;
mod delivery;
mod fake_twilio;
mod health;
mod helpers;
mod lanes;
mod peers;
mod persons;
mod registry;
mod review;
mod skeleton;
mod statistics;
mod transport;
mod walks;
