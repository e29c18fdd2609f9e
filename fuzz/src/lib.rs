//! What the fuzz targets share: Redis replies built from fuzz input.

pub mod redis_value;
