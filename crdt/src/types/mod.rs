//! The replicated data types, a file each.

pub mod ccounter;
pub mod gcounter;
pub mod lww;
pub mod mvreg;
pub mod ormap;
pub mod orset;
pub mod pncounter;
