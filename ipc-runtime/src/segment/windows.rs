//! Windows named file mappings (implemented in the portability work).

use std::io;

use super::os::{Access, RawMapping, SharedMemoryOs};

/// Named, pagefile-backed file mappings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Windows;

impl SharedMemoryOs for Windows {
    fn name(&self) -> &'static str {
        "windows"
    }

    fn create(&self, _name: &str, _size: usize) -> io::Result<RawMapping> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn open(&self, _name: &str, _access: Access) -> io::Result<RawMapping> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn unlink(&self, _name: &str) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn list(&self, _prefix: &str) -> io::Result<Vec<String>> {
        Err(io::ErrorKind::Unsupported.into())
    }
}
