//! Generates the CRI's Rust types, server traits and clients from the vendored
//! `proto/runtime/v1/api.proto`. protox parses the proto in-process, so no `protoc` is needed.

fn main() {
    let proto = "proto/runtime/v1/api.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = match protox::compile([proto], ["proto"]) {
        Ok(f) => f,
        Err(e) => panic!("parsing {proto}: {e}"),
    };
    if let Err(e) = tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // What berth does not serve yet answers `Unimplemented`.
        .generate_default_stubs(true)
        .compile_fds(fds)
    {
        panic!("generating the CRI bindings: {e}");
    }
}
