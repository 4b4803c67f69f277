//! PLACEHOLDER written by the lead so the tree builds while the Kerberos engineer writes the
//! real parser: replace this whole file. It rejects every cache.
pub const MAX_CCACHE_BYTES: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum CcacheError {
    UnsupportedVersion(u16),
}

impl std::fmt::Display for CcacheError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unsupported ccache ({self:?})")
    }
}

pub struct Ccache;

impl Ccache {
    pub fn tgt_end_time(&self) -> Option<u64> {
        None
    }
    pub fn has_credentials(&self) -> bool {
        false
    }
}

pub fn parse(_bytes: &[u8]) -> Result<Ccache, CcacheError> {
    Err(CcacheError::UnsupportedVersion(0))
}
