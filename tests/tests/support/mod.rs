pub mod ldk;
pub mod raw;
