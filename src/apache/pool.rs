//! APR pools own what Apache keeps: Rust values live in pool memory and are dropped by a
//! pool cleanup; strings handed to Apache are copied into the pool.
use std::ffi::{c_char, c_void, CStr};
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ptr::NonNull;

use super::bindings as ap;

/// APR aligns every allocation to 8 bytes.
const APR_ALIGN: usize = 8;

#[derive(Clone, Copy)]
pub struct Pool<'p> {
    raw: NonNull<ap::apr_pool_t>,
    _life: PhantomData<&'p ap::apr_pool_t>,
}

impl<'p> Pool<'p> {
    /// # Safety
    /// `raw` must be a live pool that outlives `'p`.
    pub unsafe fn from_raw(raw: *mut ap::apr_pool_t) -> Option<Pool<'p>> {
        NonNull::new(raw).map(|raw| Pool {
            raw,
            _life: PhantomData,
        })
    }

    pub fn as_ptr(self) -> *mut ap::apr_pool_t {
        self.raw.as_ptr()
    }

    /// Moves `value` into pool memory; it is dropped when the pool is cleared.
    pub fn adopt<T>(self, value: T) -> *mut T {
        const { assert!(align_of::<T>() <= APR_ALIGN) };
        unsafe extern "C" fn drop_value<T>(data: *mut c_void) -> ap::apr_status_t {
            // SAFETY: registered below for exactly this pointer, run once by APR.
            unsafe { std::ptr::drop_in_place(data.cast::<T>()) };
            0
        }
        // SAFETY: apr_palloc returns memory of the requested size, aligned to APR_ALIGN,
        // that lives until the pool is cleared; the cleanup then drops the value once.
        unsafe {
            let memory = ap::apr_palloc(self.as_ptr(), size_of::<T>().max(1)).cast::<T>();
            assert!(!memory.is_null(), "apr_palloc failed");
            memory.write(value);
            ap::apr_pool_cleanup_register(
                self.as_ptr(),
                memory.cast(),
                Some(drop_value::<T>),
                Some(ap::apr_pool_cleanup_null),
            );
            memory
        }
    }

    /// A NUL-terminated copy of `text` in the pool (cut at an interior NUL, which no header,
    /// user name or cookie we write contains).
    pub fn c_str(self, text: &str) -> *const c_char {
        self.c_bytes(text.as_bytes())
    }

    /// The same for bytes that need not be UTF-8 (a header passed on as the client sent it).
    pub fn c_bytes(self, bytes: &[u8]) -> *const c_char {
        // A byte scan: `split('\0')` went through the char searcher, the most expensive
        // part of setting a user and a note on every request (callgrind).
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        // SAFETY: apr_pstrmemdup copies `len` bytes and appends a NUL, in pool memory.
        unsafe { ap::apr_pstrmemdup(self.as_ptr(), bytes.as_ptr().cast(), len) }
    }
}

/// Reads a C string Apache owns; `None` for NULL or non-UTF-8 bytes (treated as absent).
///
/// # Safety
/// `raw` is NULL or a NUL-terminated string that outlives `'a`.
pub unsafe fn text<'a>(raw: *const c_char) -> Option<&'a str> {
    if raw.is_null() {
        return None;
    }
    // SAFETY: per the contract above.
    unsafe { CStr::from_ptr(raw) }.to_str().ok()
}
