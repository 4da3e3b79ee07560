//! `berth_archive::skeleton::Skeleton::decode`, the reader of the `tar-split` file stored
//! with every layer (a damaged one must be an error, not a panic of the daemon).
//!
//! The input is the skeleton's body before compression; the target adds the magic and
//! zlib-compresses it, so the fuzzer works on the segment encoding itself. (Raw inputs
//! starting with the magic are also decoded as they are.)
//! Checks: nothing panics; whatever decodes re-encodes and decodes to the same skeleton.
#![no_main]

use std::io::Write;

use berth_archive::skeleton::Skeleton;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut file = b"BRTHSKL1".to_vec();
    let mut z = flate2::write::ZlibEncoder::new(&mut file, flate2::Compression::fast());
    z.write_all(data).unwrap();
    z.finish().unwrap();
    for input in [&file[..], data] {
        if let Ok(sk) = Skeleton::decode(input) {
            let again = Skeleton::decode(&sk.encode()).expect("an encoded skeleton decodes");
            assert_eq!(again, sk, "encode/decode changed the skeleton");
        }
    }
});
