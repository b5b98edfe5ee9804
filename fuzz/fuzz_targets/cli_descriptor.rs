//! The descriptor → CLI builder on an arbitrary `FileDescriptorSet` and an
//! arbitrary command line: what a plugin nobody vetted hands the CLI.
//!
//! The descriptor goes through `decode_descriptor_set`, the decoder the
//! host and the CLI use. Input: a 2-byte length, that many descriptor bytes, then argv (NUL
//! separated). For each service of a descriptor set that decodes (at most
//! four), the tree the CLI parses (`standalone_command`) is built and
//! checked by clap's own consistency assertions (`Command::debug_assert`:
//! no duplicate flags or ids, valid names; it panics on a bad tree); the
//! argv is matched against it, and a command line that matches becomes a
//! request (`parse_request`, whose errors are internal ones: it must never
//! fail on matches clap produced) that encodes and decodes again. The argv
//! bytes are also decoded as the method's reply and rendered, as the CLI
//! prints a daemon's answer.
#![no_main]

use lattice_cli::dynamic::{method_by_cli_name, parse_request, render_reply, standalone_command};
use lattice_fuzz::{Input, seed};
use lattice_host::runtime::{Runtime, RuntimeConfig, builtin, decode_descriptor_set};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use prost_reflect::DynamicMessage;

fn seeds() -> Vec<Vec<u8>> {
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let counter = std::fs::read(lattice_host::artifacts::COUNTER).unwrap();
    let mut plugins: Vec<&[u8]> = builtin::BUILTIN.iter().map(|(_, w)| *w).collect();
    plugins.push(&counter);
    let lines: &[&[&str]] = &[
        &["put", "--key", "a", "--value", "hex:0a1b"],
        &["get", "--key", "a", "--json"],
        &["append", "--data", "line one"],
        &["tail", "--n", "20"],
        &["post", "--text", "hi, there"],
        &["messages", "--limit", "20", "--after-hlc", "5"],
        &["react", "--to", "hex:00ff", "--emoji", "+1"],
        &["add", "--by", "-3"],
        &["--help"],
    ];
    let mut out = Vec::new();
    for wasm in plugins {
        let p = rt.load(wasm).unwrap();
        let desc = &p.info().descriptor_set;
        for line in lines {
            let mut input = (desc.len() as u16).to_be_bytes().to_vec();
            input.extend_from_slice(desc);
            input.extend_from_slice(line.join("\0").as_bytes());
            out.push(input);
        }
    }
    out
}

fuzz_target!(init: seed(seeds), |data: &[u8]| {
    let mut input = Input(data);
    let len = u16::from_be_bytes([input.byte(), input.byte()]) as usize;
    let rest = input.rest();
    let (desc, argv) = rest.split_at(len.min(rest.len()));
    let Ok(pool) = decode_descriptor_set(desc) else {
        return;
    };
    let args: Vec<String> = std::iter::once("lattice x".to_string())
        .chain(
            argv.split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned()),
        )
        .collect();
    for service in pool.services().take(4) {
        let cmd = standalone_command("x", &service);
        cmd.clone().debug_assert();
        let Ok(matches) = cmd.try_get_matches_from(&args) else {
            continue;
        };
        let (name, sub) = matches.subcommand().expect("a subcommand is required");
        let method = method_by_cli_name(&service, name).expect("a subcommand is a method");
        let request = parse_request(&method, sub).expect("clap's matches make a request");
        let bytes = request.encode_to_vec();
        let again = DynamicMessage::decode(method.input(), bytes.as_slice())
            .expect("an encoded request decodes");
        assert_eq!(again.encoded_len(), bytes.len());
        if let Ok(reply) = DynamicMessage::decode(method.output(), argv) {
            let _ = render_reply(&reply, false);
            let _ = render_reply(&reply, true);
        }
    }
});
