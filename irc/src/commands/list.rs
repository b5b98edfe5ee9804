//! LIST: the channels here and the mesh's other chat rooms, with the
//! ELIST filters the gateway advertises (`CMNTU`).

use super::channel::CHANNELLEN;
use crate::core::Ctx;
use crate::line::{mask_match, valid_channel};
use crate::state::{ConnId, State, unix_now};

/// One LIST row: name, users, topic, created and topic times.
struct Row {
    name: String,
    users: usize,
    topic: String,
    created: u64,
    topic_at: Option<u64>,
}

pub fn list(st: &mut State, ctx: &Ctx, id: ConnId, p: &[&str]) {
    let mut rows: Vec<Row> = st
        .channels
        .values()
        .filter(|ch| !ch.modes.contains(&'s') || ch.members.contains_key(&id))
        .map(|ch| Row {
            name: ch.name.clone(),
            users: ch.members.len(),
            topic: ch
                .topic
                .as_ref()
                .map(|t| t.text.clone())
                .unwrap_or_default(),
            created: ch.created,
            topic_at: ch.topic.as_ref().map(|t| t.at),
        })
        .collect();
    // Rooms of the mesh nobody here has joined are channels too.
    for h in ctx.rooms.all() {
        let folded = format!("#{}", h.name.to_ascii_lowercase());
        if st.channels.contains_key(&folded) || !valid_channel(&folded, CHANNELLEN) {
            continue;
        }
        let topic = ctx.rooms.topic(&h);
        rows.push(Row {
            name: format!("#{}", h.name),
            users: 0,
            topic: topic.as_ref().map(|t| t.text.clone()).unwrap_or_default(),
            created: h.created_at / 1000,
            topic_at: topic.map(|t| lattice_kernel::wall_ms(t.hlc) / 1000),
        });
    }
    let filters: Vec<&str> = p
        .first()
        .map(|f| f.split(',').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let now = unix_now();
    let keep = |r: &Row| filters.iter().all(|f| list_filter(f, r, now));
    st.reply(id, "321", &["Channel", "Users  Name"]);
    for r in rows.iter().filter(|r| keep(r)) {
        st.reply(id, "322", &[&r.name, &r.users.to_string(), &r.topic]);
    }
    st.reply(id, "323", &["End of /LIST"]);
}

/// ELIST=CMNTU: `>n`/`<n` users, `C>m`/`C<m` and `T>m`/`T<m` minutes
/// since creation and topic, `!mask` (N) and masks (M); else a name.
fn list_filter(f: &str, r: &Row, now: u64) -> bool {
    let minutes = |t: u64| now.saturating_sub(t) / 60;
    let num = |s: &str| s.parse::<u64>().ok();
    if let Some(n) = f.strip_prefix('>').and_then(num) {
        return r.users as u64 > n;
    }
    if let Some(n) = f.strip_prefix('<').and_then(num) {
        return (r.users as u64) < n;
    }
    if let Some(n) = f.strip_prefix("C>").and_then(num) {
        return minutes(r.created) > n;
    }
    if let Some(n) = f.strip_prefix("C<").and_then(num) {
        return minutes(r.created) < n;
    }
    if let Some(n) = f.strip_prefix("T>").and_then(num) {
        return r.topic_at.is_some_and(|t| minutes(t) > n);
    }
    if let Some(n) = f.strip_prefix("T<").and_then(num) {
        return r.topic_at.is_some_and(|t| minutes(t) < n);
    }
    if let Some(m) = f.strip_prefix('!') {
        return !mask_match(m, &r.name);
    }
    mask_match(f, &r.name)
}
