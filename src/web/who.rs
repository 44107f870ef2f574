//! Who is using the console: the logged-in staff member as the pages need them (the
//! session extractor and its checks are in `auth`; the page frame reads this without it).
use mimamori_core::access::Role;

/// A logged-in console user.
#[derive(Debug, Clone)]
pub struct CurrentStaff {
    pub id: i64,
    pub health_centre_id: i64,
    pub display_name: String,
    pub csrf: String,
    pub role: Role,
    pub organisation_id: Option<i64>,
    /// The development tools this instance offers: the dev outbox (a channel without a
    /// provider) and the phone simulator (no telephone provider) — for the menu.
    pub dev_tools: DevTools,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct DevTools {
    pub outbox: bool,
    pub simulator: bool,
}
