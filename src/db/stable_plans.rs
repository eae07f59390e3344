//! SQLite's query planner stability guarantee (QPSG), turned on for every connection.
//!
//! Without it, SQLite (3.47 and later) lets the value bound to a `LIMIT ?` choose the
//! plan, and so marks the statement to be prepared again whenever that parameter is
//! bound again, even to the same value. Diesel binds every `LIMIT` (`.first()` is
//! `LIMIT ?` with 1), so each run of a kept statement with one was parsed and planned
//! anew: a sixth of the group-commit writer's time went to preparing the job's
//! `SELECT … LIMIT 1` again. With the guarantee, a plan never depends on bound values,
//! and a kept statement stays prepared.
//!
//! Diesel gives no access to the raw connection, so the setting is made from SQLite's
//! own hook for new connections (`sqlite3_auto_extension`), registered once per process.

use std::ffi::{c_char, c_int};
use std::sync::Once;

use libsqlite3_sys as ffi;

/// Has every SQLite connection opened from now on keep its plans stable.
pub fn enable_for_new_connections() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: registers a function with the signature SQLite calls it with; SQLite
        // keeps the pointer, which is a static function.
        let rc = unsafe { ffi::sqlite3_auto_extension(Some(on_new_connection)) };
        if rc != ffi::SQLITE_OK {
            log::warn!("SQLite: the query planner stability hook was not registered (code {rc})");
        }
    });
}

/// Called by SQLite for each new connection, before it is handed out.
unsafe extern "C" fn on_new_connection(
    db: *mut ffi::sqlite3,
    _error: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: `db` is the connection being opened, valid for this call; the option
    // takes an int (1: on) and an optional out-pointer (none).
    unsafe { ffi::sqlite3_db_config(db, ffi::SQLITE_DBCONFIG_ENABLE_QPSG, 1 as c_int, std::ptr::null_mut::<c_int>()) };
    ffi::SQLITE_OK
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens an in-memory database with SQLite's own API (the hook acts on every
    /// connection of the process, Diesel's included) and reads the option back.
    fn planner_stability_of_a_new_connection() -> c_int {
        let mut db = std::ptr::null_mut();
        let mut enabled: c_int = -1;
        // SAFETY: a NUL-terminated name, out-pointers that live through the calls, and
        // the connection closed before it goes out of scope.
        unsafe {
            assert_eq!(ffi::sqlite3_open(c":memory:".as_ptr(), &mut db), ffi::SQLITE_OK);
            ffi::sqlite3_db_config(db, ffi::SQLITE_DBCONFIG_ENABLE_QPSG, -1 as c_int, &mut enabled as *mut c_int);
            ffi::sqlite3_close(db);
        }
        enabled
    }

    #[test]
    fn every_connection_opened_after_the_hook_keeps_its_plans_stable() {
        enable_for_new_connections();
        enable_for_new_connections();
        assert_eq!(planner_stability_of_a_new_connection(), 1);
    }
}
