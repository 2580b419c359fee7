//! Service-message decoder and authenticating codec on arbitrary bytes: no input may panic,
//! and whatever decodes must re-encode to a message that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_proto::codec::{decode, encode};
use tether_proto::{AuthConfig, Codec, Key};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = decode(data) {
        // Unknown required segments are reported, not kept, so only complete messages round-trip.
        if message.envelope().is_none_or(|e| e.unsupported_required.is_empty()) {
            let again = decode(&encode(&message));
            assert_eq!(again.as_ref(), Ok(&message), "re-encoded message decodes differently");
        }
    }
    let mut codec = Codec::new(
        AuthConfig {
            keys: vec![Key { id: 1, secret: b"fuzzing-key-0123456789abcdef".to_vec() }],
            send_key: Some(1),
            require: true,
        },
        0,
    );
    // Whatever the authenticating codec accepts must also decode on its own.
    assert!(codec.open(data).is_err() || decode(data).is_ok());
});
