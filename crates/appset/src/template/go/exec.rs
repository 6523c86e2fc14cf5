//! Running a parsed Go template over JSON data.

use super::parse::{Arg, Branch, Cmd, Node, Pipe, Tree, position};
use super::value::{print_action, truth, type_name};
use super::{MissingKey, Options};
use crate::template::funcs::{self, Call};
use crate::template::{TemplateError, TemplateErrorKind};
use serde_json::Value;

/// Sprig functions that change the map they are given.
const MUTATORS: &[&str] = &[
    "set",
    "unset",
    "merge",
    "mergeOverwrite",
    "mustMerge",
    "mustMergeOverwrite",
];

/// How deep `template` and `tpl` calls may nest (Go allows 100000; a template that calls
/// itself without end is caught much earlier here).
const MAX_DEPTH: usize = 100;
/// How many actions and loop turns one string may take: a template that loops for hours would
/// stall the controller (Go has no such limit).
const MAX_STEPS: u64 = 2_000_000;
/// How much output one string may produce.
const MAX_OUTPUT: usize = 4 << 20;

pub(crate) struct Exec<'a> {
    pub(crate) text: &'a str,
    pub(crate) tree: &'a Tree,
    pub(crate) options: &'a Options,
    pub(crate) out: String,
    vars: Vec<(String, Value)>,
    depth: usize,
    steps: u64,
}

/// How a list of nodes ended: normally, or by `break`/`continue` inside a `range`.
#[derive(PartialEq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

type R<T> = Result<T, TemplateError>;

impl<'a> Exec<'a> {
    pub(crate) fn new(text: &'a str, tree: &'a Tree, options: &'a Options) -> Self {
        Exec {
            text,
            tree,
            options,
            out: String::new(),
            vars: Vec::new(),
            depth: 0,
            steps: 0,
        }
    }

    pub(crate) fn run(&mut self, data: &Value) -> R<()> {
        self.vars.push(("$".into(), data.clone()));
        self.walk(&self.tree.body, data)?;
        Ok(())
    }

    fn error(
        &self,
        pos: usize,
        kind: TemplateErrorKind,
        message: impl std::fmt::Display,
    ) -> TemplateError {
        TemplateError::new(kind, format!("{}: {message}", position(self.text, pos)))
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value) -> R<Flow> {
        for node in nodes {
            let flow = self.node(node, dot)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    /// Counts one step (an action or a loop turn); too many end the rendering.
    fn step(&mut self, pos: usize) -> R<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(self.error(
                pos,
                TemplateErrorKind::Exec,
                format!("the template takes more than {MAX_STEPS} steps; ferry stops it"),
            ));
        }
        Ok(())
    }

    fn node(&mut self, node: &Node, dot: &Value) -> R<Flow> {
        self.step(0)?;
        match node {
            Node::Text(t) => self.write(t, 0)?,
            Node::Action(pipe) => {
                let v = self.pipe(pipe, dot)?;
                if pipe.decl.is_empty() {
                    self.write(&print_action(&v), pipe.pos)?;
                }
            }
            Node::If(b) => return self.cond(b, dot, false),
            Node::With(b) => return self.cond(b, dot, true),
            Node::Range(b) => return self.range(b, dot),
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
            Node::Template { name, pipe, pos } => {
                let Some(body) = self.tree.defines.get(name) else {
                    return Err(self.error(
                        *pos,
                        TemplateErrorKind::Exec,
                        format!("no such template {name:?}"),
                    ));
                };
                let data = match pipe {
                    Some(p) => self.pipe(p, dot)?,
                    None => Value::Null,
                };
                if self.depth >= MAX_DEPTH {
                    return Err(self.error(
                        *pos,
                        TemplateErrorKind::Exec,
                        format!("template {name:?} calls itself more than {MAX_DEPTH} levels deep"),
                    ));
                }
                self.depth += 1;
                let saved = std::mem::take(&mut self.vars);
                self.vars.push(("$".into(), data.clone()));
                let result = self.walk(body, &data);
                self.vars = saved;
                self.depth -= 1;
                result?;
            }
        }
        Ok(Flow::Normal)
    }

    fn write(&mut self, s: &str, pos: usize) -> R<()> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return Err(self.error(
                pos,
                TemplateErrorKind::Exec,
                format!("the output is larger than {MAX_OUTPUT} bytes"),
            ));
        }
        self.out.push_str(s);
        Ok(())
    }

    /// `if` (`with_dot` false) or `with`.
    fn cond(&mut self, b: &Branch, dot: &Value, with_dot: bool) -> R<Flow> {
        let mark = self.vars.len();
        let v = self.pipe(&b.pipe, dot)?;
        let flow = if truth(&v) {
            if with_dot {
                self.walk(&b.body, &v)
            } else {
                self.walk(&b.body, dot)
            }
        } else {
            self.walk(&b.otherwise, dot)
        };
        self.vars.truncate(mark);
        flow
    }

    fn range(&mut self, b: &Branch, dot: &Value) -> R<Flow> {
        let mark = self.vars.len();
        // Evaluate without declaring: the variables are set per element.
        let pipe = Pipe {
            decl: Vec::new(),
            ..b.pipe.clone()
        };
        let v = self.pipe(&pipe, dot)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, x)| (Value::from(i), x.clone()))
                .collect(),
            Value::Object(m) => m
                .iter()
                .map(|(k, x)| (Value::String(k.clone()), x.clone()))
                .collect(),
            Value::Number(n) if super::value::is_int(n) => {
                let count = n.as_i64().unwrap_or(0).max(0);
                if b.pipe.decl.len() > 1 {
                    return Err(self.error(
                        b.pipe.pos,
                        TemplateErrorKind::Exec,
                        "can't use a second variable when ranging over an integer",
                    ));
                }
                (0..count)
                    .map(|i| (Value::from(i), Value::from(i)))
                    .collect()
            }
            Value::Null => Vec::new(),
            other => {
                return Err(self.error(
                    b.pipe.pos,
                    TemplateErrorKind::Exec,
                    format!("range can't iterate over {}", super::value::sprint(other)),
                ));
            }
        };
        if items.is_empty() {
            let flow = self.walk(&b.otherwise, dot)?;
            self.vars.truncate(mark);
            return Ok(flow);
        }
        for (key, item) in items {
            self.step(b.pipe.pos)?;
            match b.pipe.decl.as_slice() {
                [] => {}
                [one] => self.set_var(one, item.clone(), b.pipe.assign, b.pipe.pos)?,
                [k, v, ..] => {
                    self.set_var(k, key, b.pipe.assign, b.pipe.pos)?;
                    self.set_var(v, item.clone(), b.pipe.assign, b.pipe.pos)?;
                }
            }
            let inner = self.vars.len();
            let flow = self.walk(&b.body, &item)?;
            self.vars.truncate(inner);
            if flow == Flow::Break {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    fn set_var(&mut self, name: &str, value: Value, assign: bool, pos: usize) -> R<()> {
        if assign {
            match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = value,
                None => {
                    return Err(self.error(
                        pos,
                        TemplateErrorKind::Parse,
                        format!("undefined variable: {name}"),
                    ));
                }
            }
        } else {
            self.vars.push((name.to_string(), value));
        }
        Ok(())
    }

    fn var(&self, name: &str, pos: usize) -> R<&Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| {
                self.error(
                    pos,
                    TemplateErrorKind::Parse,
                    format!("undefined variable: {name}"),
                )
            })
    }

    pub(crate) fn pipe(&mut self, pipe: &Pipe, dot: &Value) -> R<Value> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.cmd(cmd, dot, value)?);
        }
        let value = value.unwrap_or(Value::Null);
        if let Some(name) = pipe.decl.first() {
            self.set_var(name, value.clone(), pipe.assign, pipe.pos)?;
        }
        Ok(value)
    }

    fn cmd(&mut self, cmd: &Cmd, dot: &Value, last: Option<Value>) -> R<Value> {
        let first = &cmd.args[0];
        if let Arg::Func(name) = first {
            return self.call(name, &cmd.args[1..], last, dot, cmd.pos);
        }
        if cmd.args.len() > 1 || last.is_some() {
            let what = match first {
                Arg::Field(chain) if !chain.is_empty() => {
                    format!("{} is not a method but has arguments", chain.join("."))
                }
                _ => "can't give argument to non-function".to_string(),
            };
            return Err(self.error(cmd.pos, TemplateErrorKind::Exec, what));
        }
        if let Arg::Nil = first {
            return Err(self.error(cmd.pos, TemplateErrorKind::Exec, "nil is not a command"));
        }
        self.arg(first, dot, cmd.pos)
    }

    pub(crate) fn arg(&mut self, arg: &Arg, dot: &Value, pos: usize) -> R<Value> {
        match arg {
            Arg::Field(chain) => self.chain(dot, chain, pos, "."),
            Arg::Var(name, chain) => {
                let v = self.var(name, pos)?;
                self.chain(v, chain, pos, name)
            }
            Arg::Pipe(p, chain) => {
                let v = self.pipe(p, dot)?;
                self.chain(&v, chain, pos, "(pipeline)")
            }
            Arg::Lit(v) => Ok(v.clone()),
            Arg::Nil => Ok(Value::Null),
            Arg::Func(name) => self.call(name, &[], None, dot, pos),
        }
    }

    /// Follows `.a.b` from `start`.
    fn chain(&self, start: &Value, chain: &[String], pos: usize, from: &str) -> R<Value> {
        static NULL: Value = Value::Null;
        let mut current = start;
        for (i, field) in chain.iter().enumerate() {
            current = match current {
                Value::Object(m) => match m.get(field) {
                    Some(v) => v,
                    None if self.options.missing_key == MissingKey::Error => {
                        return Err(self.error(
                            pos,
                            TemplateErrorKind::MissingKey,
                            format!(
                                "map has no entry for key {field:?} (at <{}>)",
                                at(from, &chain[..=i])
                            ),
                        ));
                    }
                    None => &NULL,
                },
                Value::Null => {
                    if self.options.missing_key == MissingKey::Error {
                        return Err(self.error(
                            pos,
                            TemplateErrorKind::MissingKey,
                            format!(
                                "nil data; no entry for key {field:?} (at <{}>)",
                                at(from, &chain[..=i])
                            ),
                        ));
                    }
                    &NULL
                }
                other => {
                    return Err(self.error(
                        pos,
                        TemplateErrorKind::Exec,
                        format!(
                            "can't evaluate field {field} in type {} (at <{}>)",
                            type_name(other),
                            at(from, &chain[..=i])
                        ),
                    ));
                }
            };
        }
        Ok(current.clone())
    }

    fn call(
        &mut self,
        name: &str,
        args: &[Arg],
        last: Option<Value>,
        dot: &Value,
        pos: usize,
    ) -> R<Value> {
        // `and` and `or` stop at the first argument that decides.
        if name == "and" || name == "or" {
            let total = args.len() + usize::from(last.is_some());
            if total == 0 {
                return Err(self.error(
                    pos,
                    TemplateErrorKind::Exec,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut v = Value::Null;
            for a in args {
                v = self.arg(a, dot, pos)?;
                if truth(&v) == (name == "or") {
                    return Ok(v);
                }
            }
            if let Some(l) = last {
                v = l;
            }
            return Ok(v);
        }
        let mut values = Vec::with_capacity(args.len() + 1);
        for a in args {
            values.push(self.arg(a, dot, pos)?);
        }
        if let Some(l) = last {
            values.push(l);
        }
        if name == "tpl" {
            return self.tpl(&values, pos);
        }
        let call = Call { name, args: values };
        let result = funcs::call(call).map_err(|e| {
            let kind = if e.starts_with("function ") && e.contains("not available") {
                TemplateErrorKind::UnknownFunction
            } else {
                TemplateErrorKind::Exec
            };
            self.error(pos, kind, format!("error calling {name}: {e}"))
        })?;
        // Sprig's set, unset and merge change the map they are given (Go maps are references):
        // when that map is a variable (`$_ := set $d "k" v`), the variable sees the change.
        if MUTATORS.contains(&name)
            && let Some(Arg::Var(var, chain)) = args.first()
        {
            self.write_back(var, chain, result.clone());
        }
        Ok(result)
    }

    fn write_back(&mut self, var: &str, chain: &[String], value: Value) {
        let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == var) else {
            return;
        };
        let mut target = &mut slot.1;
        for field in chain {
            match target.as_object_mut().and_then(|m| m.get_mut(field)) {
                Some(next) => target = next,
                None => return,
            }
        }
        *target = value;
    }

    /// Argo CD's `tpl TEXT DATA`: renders TEXT as a template with DATA, `<no value>` removed.
    fn tpl(&mut self, values: &[Value], pos: usize) -> R<Value> {
        let [Value::String(text), data] = values else {
            return Err(self.error(
                pos,
                TemplateErrorKind::Exec,
                "error calling tpl: want a template string and its data",
            ));
        };
        if self.depth >= MAX_DEPTH {
            return Err(self.error(pos, TemplateErrorKind::Exec, "tpl nests too deep"));
        }
        let tree = super::parse::parse(text, &funcs::exists).map_err(|e| {
            self.error(
                pos,
                e.kind,
                format!(
                    "error calling tpl: cannot parse template {text:?}: {}",
                    e.message
                ),
            )
        })?;
        let mut inner = Exec::new(text, &tree, self.options);
        inner.depth = self.depth + 1;
        inner.steps = self.steps;
        let ran = inner.run(data);
        self.steps = inner.steps;
        ran.map_err(|e| self.error(pos, e.kind, format!("error calling tpl: {}", e.message)))?;
        Ok(Value::String(inner.out.replace("<no value>", "")))
    }
}

fn at(from: &str, chain: &[String]) -> String {
    let base = if from == "." {
        String::new()
    } else {
        from.to_string()
    };
    format!("{base}.{}", chain.join("."))
}
