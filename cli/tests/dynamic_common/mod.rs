//! Shared by the `dynamic_*` integration tests: the test descriptors, compiled at test time.

#![allow(dead_code)] // each test binary uses a different subset

use clap::{ArgMatches, Command};
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, ServiceDescriptor};

/// The fixtures compiled with comments (source info) and round-tripped through the encoded
/// `FileDescriptorSet`, the form in which a plugin hands its descriptor to the host.
pub fn pool() -> DescriptorPool {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dynamic_fixtures");
    let mut compiler = protox::Compiler::new([dir]).expect("include path");
    compiler.include_source_info(true).include_imports(true);
    compiler
        .open_files(["chat.proto", "kv.proto", "kinds.proto", "names.proto"])
        .expect("fixtures compile");
    let bytes = compiler.encode_file_descriptor_set();
    DescriptorPool::decode(bytes.as_slice()).expect("descriptor set decodes")
}

pub fn service(name: &str) -> ServiceDescriptor {
    pool().get_service_by_name(name).expect("service exists")
}

pub fn chat() -> ServiceDescriptor {
    service("lattice.chat.v1.Chat")
}

pub fn kv() -> ServiceDescriptor {
    service("lattice.kv.v1.Kv")
}

pub fn kinds() -> ServiceDescriptor {
    service("test.kinds.Kinds")
}

/// Matches `args` (after the plugin name) against the plugin command and returns the
/// method and its subcommand's matches.
pub fn matches(
    service: &ServiceDescriptor,
    args: &[&str],
) -> Result<(MethodDescriptor, ArgMatches), clap::Error> {
    let cmd: Command = lattice_cli::dynamic::build_command("plugin", service);
    let m = cmd.try_get_matches_from(std::iter::once("plugin").chain(args.iter().copied()))?;
    let (name, sub) = m.subcommand().expect("a method was given");
    let method = lattice_cli::dynamic::method_by_cli_name(service, name).expect("method exists");
    Ok((method, sub.clone()))
}

/// Parses a command line into the request message, panicking on any error.
pub fn request(service: &ServiceDescriptor, args: &[&str]) -> DynamicMessage {
    let (method, sub) = matches(service, args).unwrap_or_else(|e| panic!("{e}"));
    lattice_cli::dynamic::parse_request(&method, &sub).expect("request builds")
}

/// The error clap reports for a command line that should be rejected.
pub fn rejected(service: &ServiceDescriptor, args: &[&str]) -> clap::Error {
    match matches(service, args) {
        Ok((_, sub)) => panic!("{args:?} was accepted: {sub:?}"),
        Err(e) => e,
    }
}

/// The rendered long help (`--help`) of one method.
pub fn long_help(service: &ServiceDescriptor, method: &str) -> String {
    let mut cmd = lattice_cli::dynamic::build_command("plugin", service);
    cmd.build();
    let sub = cmd.find_subcommand_mut(method).expect("subcommand exists");
    sub.render_long_help().to_string()
}
