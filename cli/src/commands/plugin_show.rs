//! `plugin inspect` and `plugin check` for a person: what a plugin offers
//! (service, methods with their flags, op type, each with its proto
//! comment) and what the host decides about it.

use lattice_cli::dynamic::{self, summary_at, terminal_safe as safe};
use lattice_host::api::{ErrorKind, PluginView, Response};
use lattice_host::runtime::CheckReport;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use crate::fail::Failure;
use crate::plugin_cmd::Schema;

pub fn inspect(p: &PluginView) {
    outln!("name      {}", safe(&p.name));
    outln!(
        "version   {} (state version {})",
        safe(&p.version),
        p.state_version
    );
    outln!("hash      {}", p.hash);
    outln!("size      {} bytes", p.size);
    outln!("api       lattice:plugin@{}", p.api_version);
    let Ok(schema) = Schema::of(p) else {
        outln!("service   {}", safe(&p.service));
        outln!("op type   {}", safe(&p.op_type));
        return;
    };
    let s = &schema.service;
    outln!(
        "service   {}{}",
        s.full_name(),
        doc(summary_at(&s.parent_file(), s.path()))
    );
    outln!("methods");
    for m in s.methods() {
        let kind = if dynamic::is_query(&m) {
            "query"
        } else {
            "command"
        };
        outln!(
            "  {:<14} {:<8} {} -> {}{}",
            dynamic::kebab_case(m.name()),
            kind,
            m.input().name(),
            m.output().name(),
            doc(summary_at(&m.parent_file(), m.path()))
        );
        for f in m.input().fields() {
            outln!(
                "      --{:<18} {}{}",
                dynamic::kebab_case(f.name()),
                type_name(&f),
                doc(summary_at(&f.parent_file(), f.path()))
            );
        }
    }
    let op = &schema.op_type;
    outln!(
        "op type   {}{}",
        op.full_name(),
        doc(summary_at(&op.parent_file(), op.path()))
    );
    op_fields(op);
}

/// The op message's fields, oneof cases grouped: what any op can say.
fn op_fields(op: &MessageDescriptor) {
    for o in op.oneofs() {
        outln!("  oneof {}", o.name());
        for f in o.fields() {
            outln!(
                "    {:<16} {}{}",
                f.name(),
                type_name(&f),
                doc(summary_at(&f.parent_file(), f.path()))
            );
        }
    }
    for f in op.fields().filter(|f| f.containing_oneof().is_none()) {
        outln!(
            "  {:<18} {}{}",
            f.name(),
            type_name(&f),
            doc(summary_at(&f.parent_file(), f.path()))
        );
    }
}

fn type_name(f: &FieldDescriptor) -> String {
    let base = match f.kind() {
        Kind::Message(m) => m.name().to_string(),
        Kind::Enum(e) => e.name().to_string(),
        k => format!("{k:?}").to_lowercase(),
    };
    if f.is_list() {
        format!("repeated {base}")
    } else {
        base
    }
}

fn doc(s: Option<String>) -> String {
    s.map(|s| format!("  {}", safe(&s))).unwrap_or_default()
}

pub fn check(r: &CheckReport) {
    outln!("size      {} bytes (limit {})", r.size, r.max_size);
    outln!("hash      {}", r.hash);
    if let Some(w) = &r.world {
        outln!("world     {w}");
    }
    for (i, (name, ok)) in r.imports.iter().enumerate() {
        let head = if i == 0 { "imports" } else { "" };
        let verdict = if *ok { "provided" } else { "NOT PROVIDED" };
        outln!("{head:<9} {} {verdict}", safe(name));
    }
    if r.imports.is_empty() {
        outln!("imports   (none)");
    }
    outln!("exports   {}", safe(&r.exports.join(", ")));
    let limits: Vec<String> = r.limits.iter().map(|(k, v)| format!("{k} {v}")).collect();
    outln!("limits    {}", limits.join(", "));
    if let (Some(name), Some(version)) = (&r.name, &r.version) {
        outln!(
            "describe  {} {} (state version {}), service {}, op type {}",
            safe(name),
            safe(version),
            r.state_version.unwrap_or_default(),
            safe(r.service.as_deref().unwrap_or("")),
            safe(r.op_type.as_deref().unwrap_or(""))
        );
    }
    for d in &r.dry_runs {
        outln!(
            "dry run   {:<14} {:<8} {}: {}",
            dynamic::kebab_case(&d.method),
            // `migrate` is an export with no request message.
            match (d.query, d.output.is_empty()) {
                (true, _) => "query",
                (false, true) => "export",
                (false, false) => "command",
            },
            if d.ok { "ok" } else { "FAILED" },
            safe(&d.outcome)
        );
    }
    for p in &r.problems {
        outln!("problem   {}", safe(&p.cause));
        outln!("  fix     {}", safe(&p.fix));
    }
    if r.problems.is_empty() {
        outln!("verdict   ok: this host loads and runs the plugin");
    }
}

/// A check that found problems fails the command (after the report is
/// printed), with the first problem as its one line.
pub fn refusal(resp: &Response) -> Option<anyhow::Error> {
    let Response::PluginCheck { report } = resp else {
        return None;
    };
    let first = report.problems.first()?;
    Some(Failure::new(
        ErrorKind::Invalid,
        format!(
            "plugin check found {} problem(s); first: {} (fix: {})",
            report.problems.len(),
            first.cause,
            first.fix
        ),
    ))
}
