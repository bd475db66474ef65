//! `culvert ls --json` and `culvert inspect NAME --json`: the same facts as the
//! tables of [`crate::sections`], as JSON for scripts. Read-only, like the tables.
//!
//! `ls --json` prints an array with one object per section: `name`, `kind`, `size`,
//! `creator` (`pid`, `start_time`, `alive`), `endpoints` (`live`, `recorded`), `state`
//! (`initializing`, `ready`, `poisoned`, `stale`, or `corrupted`) and `problem` (why it
//! is corrupted, else `null`). `inspect --json` prints one such object with `file`,
//! `version`, `data_offset` and `objects` (`name`, `offset`, `len`, `kind`, `align`,
//! `ring`: `type` and `lines`, or `null` when unreadable) added.

use serde_json::{json, Value};

use culvert_section::SectionOptions;

use crate::sections::{examine, existing_root, kind_name, state_word, Entry, State};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The summary object of one section.
fn summary(name: &str, e: &Entry) -> Value {
    let state = e.state();
    let problem = match &state {
        State::Corrupted(why) => Value::from(why.as_str()),
        _ => Value::Null,
    };
    match &e.header {
        Ok(h) => {
            let (live, all) = e.endpoints();
            json!({
                "name": name,
                "kind": kind_name(h.kind),
                "size": h.total_size,
                "creator": {
                    "pid": h.creator.pid,
                    "start_time": h.creator.start_time,
                    "alive": h.creator.is_alive(),
                },
                "endpoints": { "live": live, "recorded": all },
                "state": state_word(&state),
                "problem": problem,
            })
        }
        Err(_) => json!({
            "name": name,
            "kind": null,
            "size": null,
            "creator": null,
            "endpoints": null,
            "state": "corrupted",
            "problem": problem,
        }),
    }
}

/// `culvert ls --json`.
pub fn ls(opts: &SectionOptions) -> Result<String, BoxError> {
    let root = existing_root(opts)?;
    let names = culvert_section::Section::list(opts)
        .map_err(|e| format!("cannot list {}: {e}", root.display()))?;
    let all: Vec<Value> = names
        .iter()
        .map(|n| summary(n, &examine(n, opts)))
        .collect();
    Ok(format!("{}\n", serde_json::to_string_pretty(&all)?))
}

/// `culvert inspect NAME --json`: the JSON, and whether the section is corrupted.
pub fn inspect(name: &str, opts: &SectionOptions) -> Result<(String, bool), BoxError> {
    culvert_section::validate_name(name)?;
    let path = opts.path_of(name)?;
    if std::fs::symlink_metadata(&path).is_err() {
        return Err(format!(
            "no section '{name}' in {}",
            opts.namespace_root()?.display()
        )
        .into());
    }
    let e = examine(name, opts);
    let mut v = summary(name, &e);
    v["file"] = Value::from(path.display().to_string());
    if let Ok(h) = &e.header {
        v["version"] = Value::from(h.version);
        v["data_offset"] = Value::from(h.data_offset);
    }
    let objects: Vec<Value> = e
        .objects
        .iter()
        .map(|(o, ring)| {
            json!({
                "name": o.name,
                "offset": o.offset,
                "len": o.len,
                "kind": o.kind,
                "align": o.align,
                "ring": ring.as_ref().map(|r| json!({
                    "type": r.type_name(),
                    "lines": r.describe(),
                })),
            })
        })
        .collect();
    v["objects"] = Value::from(objects);
    let corrupted = matches!(e.state(), State::Corrupted(_));
    Ok((
        format!("{}\n", serde_json::to_string_pretty(&v)?),
        corrupted,
    ))
}
