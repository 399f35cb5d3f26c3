//! Picks the next transition among the valid ones from a few numbers (an
//! [`Op`]): the proptest driver draws them, the fuzz driver decodes them
//! from bytes. Connections are picked among the live ones, names from
//! [`NAMES`] or the sender's own memberships, `signal` rooms among the
//! created ones; time only moves forward.

use super::{MAX_CONNS, Model, ROUTE_COUNT, Transition};
use crate::engine::ConnId;
use crate::fuzzing::ops::Op;
use crate::fuzzing::templates::{Context, MALFORMED, Msg, NAMES, template};

impl Model {
    /// The live connection at `index` modulo their number.
    fn pick(&self, index: u8) -> Option<ConnId> {
        let n = self.conns.len();
        let index = usize::from(index).checked_rem(n)?;
        self.conns.keys().nth(index).copied()
    }

    /// The transition `op` stands for now (`None` if it needs a live
    /// connection and there is none, or would open one too many).
    pub fn choose(&self, op: &Op) -> Option<Transition> {
        Some(match op {
            Op::Open { route, user } => {
                if self.conns.len() >= MAX_CONNS {
                    return None;
                }
                let user = usize::from(*user) % (NAMES.len() + 1);
                Transition::Open {
                    conn: ConnId(self.next_conn),
                    route: usize::from(*route) % ROUTE_COUNT,
                    user: NAMES.get(user).copied(),
                }
            }
            Op::Template {
                conn,
                template: index,
                slots,
            } => {
                let conn = self.pick(*conn)?;
                let r = self.route_of(conn)?;
                let cx = Context {
                    created: r.signal.len(),
                    own: r.own(conn),
                };
                let msg = template(r.protocol, *index, *slots, &cx);
                Transition::Send { conn, msg }
            }
            Op::Raw { conn, text } => {
                let text = match text.as_slice() {
                    [0xFF, n] => MALFORMED[usize::from(*n) % MALFORMED.len()].to_string(),
                    bytes => String::from_utf8_lossy(bytes).into_owned(),
                };
                let conn = self.pick(*conn)?;
                let msg = Msg::Text(text);
                Transition::Send { conn, msg }
            }
            Op::Binary { conn, len } => Transition::Binary {
                conn: self.pick(*conn)?,
                len: usize::from(*len),
            },
            Op::Pong { conn } => Transition::Pong {
                conn: self.pick(*conn)?,
            },
            Op::Close { conn } => Transition::Close {
                conn: self.pick(*conn)?,
            },
            Op::Tick { quarter_secs } => Transition::Tick {
                ms: u64::from(*quarter_secs) * 250,
            },
            Op::Wait { ms } => Transition::Wait { ms: u64::from(*ms) },
        })
    }
}
