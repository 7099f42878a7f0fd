pub mod ldk;
