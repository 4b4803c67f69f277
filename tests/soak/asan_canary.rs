//! Planted bugs for `make sanitize`: built with the same sanitizer flags as the unit tests,
//! each must be reported, or the lane is not really checking anything.
fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    match which.as_str() {
        "use-after-free" => {
            let v = vec![1u8; 64];
            let p = v.as_ptr();
            drop(v);
            // SAFETY: none; this is the bug the sanitizer must catch.
            let x = unsafe { std::ptr::read_volatile(p.add(8)) };
            println!("read {x} after free: the sanitizer is not running");
        }
        "leak" => {
            let v = Box::new([7u8; 4096]);
            let p = Box::into_raw(v);
            println!("leaked {:p}", p);
        }
        _ => eprintln!("usage: asan_canary use-after-free|leak"),
    }
}
