//! A YAML tree that remembers where each node was written, so that every
//! configuration error can name its line. Built from yaml-rust2's event
//! stream; only what slate's files use (maps, sequences, scalars).

use yaml_rust2::parser::{MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;
use yaml_rust2::Event;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Scalar(String),
    Seq(Vec<Located>),
    Map(Vec<(Located, Located)>),
    Null,
}

/// A node with the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub line: usize,
    pub node: Node,
}

impl Located {
    pub fn as_str(&self) -> Option<&str> {
        match &self.node {
            Node::Scalar(s) => Some(s),
            _ => None,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self.node {
            Node::Scalar(_) => "a scalar",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
            Node::Null => "empty",
        }
    }
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Located, Option<Located>)>,
    done: Option<Located>,
    error: Option<String>,
}

impl Builder {
    fn push_value(&mut self, value: Located) {
        match self.stack.last_mut() {
            None => self.done = Some(value),
            Some((parent, pending_key)) => match &mut parent.node {
                Node::Seq(items) => items.push(value),
                Node::Map(entries) => match pending_key.take() {
                    None => *pending_key = Some(value),
                    Some(key) => entries.push((key, value)),
                },
                _ => unreachable!("only collections are pushed on the stack"),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(text, style, _, _) => {
                let plain = matches!(style, yaml_rust2::scanner::TScalarStyle::Plain);
                let node = if plain && (text.is_empty() || text == "~" || text == "null") {
                    Node::Null
                } else {
                    Node::Scalar(text)
                };
                self.push_value(Located { line, node });
            }
            Event::SequenceStart(..) => self.stack.push((
                Located {
                    line,
                    node: Node::Seq(Vec::new()),
                },
                None,
            )),
            Event::MappingStart(..) => self.stack.push((
                Located {
                    line,
                    node: Node::Map(Vec::new()),
                },
                None,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, _)) = self.stack.pop() {
                    self.push_value(node);
                }
            }
            Event::Alias(_) => {
                if self.error.is_none() {
                    self.error = Some(format!("line {line}: YAML aliases are not supported here"));
                }
                self.push_value(Located {
                    line,
                    node: Node::Null,
                });
            }
            _ => {}
        }
    }
}

/// Parses one YAML document. An empty document is `Node::Null`.
pub fn parse(text: &str) -> Result<Located, String> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| {
        let m = e.marker();
        format!("line {}, column {}: {}", m.line(), m.col() + 1, e.info())
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.done.unwrap_or(Located {
        line: 1,
        node: Node::Null,
    }))
}

/// The closest candidate to `word` by edit distance, if it is close enough
/// to be a plausible typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(word, c);
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.filter(|(d, c)| *d <= (c.len().max(word.len()) / 2).max(2))
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_lines() {
        let doc = parse("a:\n  b: 1\n  c: [x, y]\n").unwrap();
        let Node::Map(top) = &doc.node else { panic!() };
        assert_eq!(top[0].0.as_str(), Some("a"));
        let Node::Map(inner) = &top[0].1.node else {
            panic!()
        };
        assert_eq!(inner[0].0.line, 2);
        assert_eq!(inner[1].0.line, 3);
        assert_eq!(inner[0].1.as_str(), Some("1"));
    }

    #[test]
    fn suggests_close_keys() {
        let keys = ["slo_error_rate", "slo_availability", "period"];
        assert_eq!(closest("slo_eror_rate", keys), Some("slo_error_rate"));
        assert_eq!(closest("zzzzzzzzzzzz", keys), None);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.starts_with("line "), "{err}");
    }
}
